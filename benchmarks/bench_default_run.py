"""The default run (`snakemake --cores N` on config.yaml) against the floor its own jobs set.

    python benchmarks/bench_default_run.py [--cores 2] [--workdir DIR]

Runs the default workflow in a temporary working directory (config.yaml copied from this
checkout; the `mer` CLI must be on PATH), or in --workdir, which must hold no results/ and
whose own config.yaml, if any, is used (`.` in a fresh clone is what a new user runs), and
reads every job's start and end from Snakemake's logs of this run (1-s resolution). Everything
waits for the synthesis job, so the fastest any schedule of the same jobs can finish is its
wall time plus the other jobs' seconds spread over the cores:

    floor = synth seconds + (sum of the other jobs' seconds) / cores

Each job's seconds include its process start-up (imports), so the floor charges the workflow
only for Snakemake's scheduling and the cores left idle. Printed: the CPU (model and the ISA
flags that choose kernels), the wall time and the whole process tree's CPU seconds, the
seconds per rule, the floor, and as the last line `default run X s, floor Y s, schedule
ratio X/Y`. Times per CPU class: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from mer import compute

REPO = Path(__file__).resolve().parents[1]
TIMESTAMP = re.compile(r"^\[(\w{3} \w{3}\s+\d+ \d\d:\d\d:\d\d \d{4})\]")
JOB_START = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):")
JOB_ID = re.compile(r"^\s+jobid: (\d+)")
JOB_END = re.compile(r"^Finished jobid: (\d+)")
PHASES = re.compile(r"^seconds: (.+)$", re.MULTILINE)


def job_seconds(log_text: str) -> list[tuple[str, float]]:
    """(rule, seconds) of every finished job in a Snakemake log."""
    now, rule, started, jobs = None, None, {}, []
    for line in log_text.splitlines():
        if match := TIMESTAMP.match(line):
            now = datetime.strptime(re.sub(r"\s+", " ", match[1]), "%a %b %d %H:%M:%S %Y")
        elif match := JOB_START.match(line):
            rule = match[1]
        elif (match := JOB_ID.match(line)) and rule:
            started[match[1]], rule = (rule, now), None
        elif (match := JOB_END.match(line)) and match[1] in started:
            name, start = started.pop(match[1])
            jobs.append((name, (now - start).total_seconds()))
    return jobs


def fold_phases(train_logs) -> dict[str, float]:
    """The seconds per phase (imports, setup, epochs, ...) that `mer train` logs, summed."""
    total: dict[str, float] = {}
    for log in train_logs:
        for match in PHASES.finditer(log.read_text()):
            for item in match[1].split(", "):
                name, value = item.rsplit(" ", 1)
                total[name] = total.get(name, 0.0) + float(value)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", type=Path, help="run here (kept) instead of a temp dir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        # A run starts from nothing, and nobody's results are deleted to get there.
        if any(path.name != ".gitkeep" for path in (workdir / "results").glob("*")):
            raise SystemExit(f"{workdir / 'results'} is not empty: move it away, then rerun")
        workdir.mkdir(parents=True, exist_ok=True)
        if not (workdir / "config.yaml").exists():  # a config already there is used as is
            shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
        command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile")]
        command += ["-d", str(workdir), "--cores", str(args.cores)]
        started, start = time.time(), time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, cwd=workdir)
        wall = time.perf_counter() - start
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        if result.returncode != 0:
            raise SystemExit(f"the default run failed:\n{result.stdout}\n{result.stderr}")
        # The report rule starts a second Snakemake (its own log, no jobs): read them all.
        logs = [
            log
            for log in sorted((workdir / ".snakemake/log").glob("*.snakemake.log"))
            if log.stat().st_mtime >= started
        ]
        jobs = [job for log in logs for job in job_seconds(log.read_text())]
        phases = fold_phases((workdir / "results").glob("*/logs/train/**/*.log"))
    per_rule: dict[str, list[float]] = {}
    for rule, seconds in jobs:
        per_rule.setdefault(rule, []).append(seconds)
    flags = sorted(compute.cpu_flags() & set(compute.ISA_FLAGS))
    print(f"CPU {compute.cpu_model()} ({os.cpu_count()} cores; {', '.join(flags)})")
    print(
        f"default run, --cores {args.cores}: {len(jobs)} jobs, wall {wall:.1f} s, "
        f"CPU {usage.ru_utime + usage.ru_stime:.1f} s (Snakemake and every job)"
    )
    for rule, seconds in sorted(per_rule.items(), key=lambda item: -sum(item[1])):
        print(
            f"  {rule:20s} {len(seconds):3d} jobs {sum(seconds):7.0f} s "
            f"(median {sorted(seconds)[len(seconds) // 2]:.0f} s, max {max(seconds):.0f} s)"
        )
    synth = sum(per_rule.pop("synth", [0.0]))
    rest = sum(sum(seconds) for seconds in per_rule.values())
    floor = synth + rest / args.cores
    train = sum(per_rule.get("train", []))
    print(
        f"floor: synth {synth:.0f} s + {rest:.0f} job-seconds / {args.cores} cores = "
        f"{floor:.0f} s; training is {train / (synth + rest):.0%} of all job-seconds"
    )
    folds = len(per_rule.get("train", []))
    if phases and folds:
        print(
            f"  the {folds} folds' seconds by phase: "
            + ", ".join(f"{name} {value:.0f}" for name, value in phases.items())
            + f"; outside the epochs {(sum(phases.values()) - phases.get('epochs', 0)) / folds:.1f}"
            " s per fold"
        )
    print(f"default run {wall:.0f} s, floor {floor:.0f} s, schedule ratio {wall / floor:.2f}")


if __name__ == "__main__":
    main()
