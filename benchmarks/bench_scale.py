"""How the workflow scales: `snakemake -n` time on a CASME II-sized configuration, and the
preprocessing wall time at 1x, 2x and 4x the samples.

    python benchmarks/bench_scale.py [--subjects 26] [--clips 10] [--repeats 3]
                                     [--base-subjects 2] [--scales 1,2,4] [--cores 2]

Everything is measured in this run, on synthetic data (the `mer` CLI must be on PATH):
1. a config with ~subjects x clips samples (CASME II: 255 samples, 26 subjects), the default
   experiments plus three variants (own alpha, own flow method, own learning rate); its
   samples table is generated once, then `snakemake -n` (rule all) is timed (median), and
   the same at a quarter of the subjects as the in-run reference, and `snakemake --version`
   (Snakemake loading itself: no dry run of any workflow can be faster);
2. preprocessing (evm -> flow -> masks -> shards, target all_shards) of base-subjects x k
   subjects for each scale k, timed after the dataset and samples table exist; printed as
   wall and CPU seconds (all processes), per sample, and as ratios to 1x (linear growth:
   time ratio ~ sample ratio). CPU seconds are the robust figure on a shared machine.
"""

from __future__ import annotations

import argparse
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {
    "alpha_4": {"evm": {"alpha": 4}},
    "dis_flow": {"flow": {"method": "dis"}},
    "slow_lr": {"train": {"learning_rate": 0.001}},
}


def snakemake(workdir: Path, *args: str) -> str:
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir)]
    result = subprocess.run([*command, *args], capture_output=True, text=True, cwd=workdir)
    if result.returncode != 0:
        raise SystemExit(f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout + result.stderr


def write_config(workdir: Path, subjects: int, clips: int, frame_size: int, variants: dict) -> None:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["synthetic"].update(
        subjects=subjects,
        clips_per_subject=clips,
        frame_size=frame_size,
        frames_min=20,
        frames_max=28,
    )
    config["shards"]["input_size"] = 32
    config["experiments"].update(variants)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))


def sample_count(workdir: Path) -> int:
    return len((workdir / "results/synthetic/samples.tsv").read_text().splitlines()) - 1


def child_cpu_seconds() -> float:
    """User + system CPU of the finished child processes (Snakemake and the jobs it waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def dry_run(subjects: int, clips: int, repeats: int) -> tuple[int, int, float, float]:
    """Samples, jobs, median wall and median CPU seconds of `snakemake -n` (rule all)."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        # Frames are never rendered beyond the synthesis (a dry run reads only samples.tsv).
        write_config(workdir, subjects, clips, 32, VARIANTS)
        snakemake(workdir, "results/synthetic/samples.tsv", "--cores", "2")
        seconds, cpu_seconds = [], []
        for _ in range(repeats):
            start, cpu_start = time.perf_counter(), child_cpu_seconds()
            # Plain -n, as a user types it: the listing of every job is part of the cost.
            output = snakemake(workdir, "-n")
            seconds.append(time.perf_counter() - start)
            cpu_seconds.append(child_cpu_seconds() - cpu_start)
        jobs = int(re.findall(r"^total\s+(\d+)$", output, re.M)[-1])
        return (
            sample_count(workdir),
            jobs,
            statistics.median(seconds),
            statistics.median(cpu_seconds),
        )


def snakemake_startup_seconds(repeats: int) -> float:
    """Median wall seconds of `snakemake --version` (imports Snakemake's CLI, no workflow)."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "snakemake", "--version"], capture_output=True)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def dry_run_seconds(subjects: int, clips: int, repeats: int) -> None:
    """The CASME II-sized dry run, and a quarter-sized one in the same run as its reference:
    the ratio says whether the cost grows with the jobs (and not faster)."""
    experiments = 3 + len(VARIANTS)
    quarter = dry_run(max(2, subjects // 4), clips, repeats)
    full = dry_run(subjects, clips, repeats)
    startup = snakemake_startup_seconds(repeats)
    for name, (n, jobs, wall, cpu) in (("reference (1/4)", quarter), ("CASME II-sized", full)):
        print(
            f"dry run {name}: {n} samples, {experiments} experiments, {jobs} jobs: "
            f"wall median {wall:.2f} s, CPU median {cpu:.2f} s ({1000 * cpu / jobs:.2f} ms/job)"
        )
    print(
        f"dry run vs reference: jobs x{full[1] / quarter[1]:.2f}, "
        f"wall x{full[2] / quarter[2]:.2f}, CPU x{full[3] / quarter[3]:.2f}; "
        f"CASME II-sized wall / 2 s target: {full[2] / 2:.2f}"
    )
    # What no workflow can go below on this machine: Snakemake loading itself.
    print(
        f"Snakemake start-up alone (`snakemake --version`, no workflow): wall median "
        f"{startup:.2f} s; the CASME II-sized dry run less it: {full[2] - startup:.2f} s"
    )


def preprocessing_seconds(subjects: int, clips: int, cores: int) -> tuple[int, float, float]:
    """Samples, wall seconds and CPU seconds of all_shards once the samples table exists."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        write_config(workdir, subjects, clips, 64, {})
        snakemake(workdir, "results/synthetic/samples.tsv", "--cores", str(cores))
        start, cpu_start = time.perf_counter(), child_cpu_seconds()
        snakemake(workdir, "all_shards", "--cores", str(cores))
        wall, cpu = time.perf_counter() - start, child_cpu_seconds() - cpu_start
        return sample_count(workdir), wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=26)
    parser.add_argument("--clips", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--base-subjects", type=int, default=2)
    parser.add_argument("--base-clips", type=int, default=4)
    parser.add_argument("--scales", default="1,2,4", help='"" skips preprocessing')
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--skip-dry-run", action="store_true")
    args = parser.parse_args()
    if not args.skip_dry_run:
        dry_run_seconds(args.subjects, args.clips, args.repeats)
    reference = None
    for scale in (int(k) for k in args.scales.split(",") if k):
        n, wall, cpu = preprocessing_seconds(
            args.base_subjects * scale, args.base_clips, args.cores
        )
        reference = reference or (n, wall, cpu)
        # CPU seconds do not depend on what else the machine runs; wall seconds do.
        print(
            f"preprocessing {scale}x: {n} samples, wall {wall:.1f} s ({wall / n:.2f} s/sample), "
            f"CPU {cpu:.1f} s ({cpu / n:.2f} s/sample); vs 1x: samples x{n / reference[0]:.2f}, "
            f"wall x{wall / reference[1]:.2f}, CPU x{cpu / reference[2]:.2f}"
        )


if __name__ == "__main__":
    main()
