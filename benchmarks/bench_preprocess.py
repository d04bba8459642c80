"""Preprocessing of a CASME II-sized set through Snakemake against the same clips in one process.

    python benchmarks/bench_preprocess.py [--subjects 26] [--clips 9] [--seed 70] [--cores 2]
                                          [--snakefile PATH] [--workdir DIR]

Everything is measured in this run, on the same machine:
1. a synthetic set at the calibrated defaults of config.yaml (about 312 x 259 px JPEG frames,
   onset..offset ~65 frames at 200 fps); 26 subjects x 9 clips on average with seed 70 make
   218 clips, as CASME II (other seeds give a few more or less). Generated, and its samples
   table made, before any timing;
2. workflow: `snakemake preprocess --cores N` (evm -> flow -> masks of every clip and the
   contact sheet, default settings), wall and CPU seconds (Snakemake and its jobs);
3. in-process: the same clips, one after the other in this process, with OpenCV at one thread
   as the jobs run it: decode onset..offset, EVM, onset->apex flow, flow image, mask and
   masked apex, with the workflow's parameters. Nothing is written: the reference is the
   compute alone, so the ratio charges the workflow with everything else (process start-up,
   Snakemake, compressing and writing the artifacts and previews).

The compute floor, what no workflow on this machine can beat, is measured too: --cores
in-process runs at once, each on its share of the clips (busy cores can slow each other down,
so this can be above in-process CPU / cores; the machine's noise can also put it below). The
last line is `overhead ratio X` = workflow wall / in-process wall. The workflow may use --cores
N, the in-process run one core: CPU seconds are printed beside, and their ratio is the overhead
as work done. `--snakefile` runs another checkout's workflow (e.g. main's, for a before/after;
its `mer` must be the one on PATH). `--workdir` keeps the generated set there and reuses it
next time (the preprocessing outputs are removed before each timed run).
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def snakemake(snakefile: Path, workdir: Path, *args: str) -> None:
    command = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(workdir), *args]
    result = subprocess.run(command, capture_output=True, text=True, cwd=workdir)
    if result.returncode != 0:
        raise SystemExit(f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")


def child_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def remove_preprocessing(workdir: Path) -> None:
    """What `snakemake preprocess` makes, and Snakemake's records of it."""
    results = workdir / "results/synthetic"
    for stage in (
        "evm",
        "flow",
        "masks",
        "logs/evm",
        "logs/flow",
        "logs/masks",
        "logs/contact_sheet",
    ):
        shutil.rmtree(results / stage, ignore_errors=True)
    shutil.rmtree(workdir / ".snakemake", ignore_errors=True)


def write_config(workdir: Path, subjects: int, clips: int, seed: int) -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["synthetic"].update(subjects=subjects, clips_per_subject=clips, seed=seed)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return config


def in_process(
    workdir: Path, config: dict, part: int = 0, parts: int = 1
) -> tuple[int, float, float]:
    """Clips, wall and CPU seconds of decode + EVM + flow + masks of every clip (every parts-th
    from the part-th on), no writes."""
    import cv2

    from mer.data import clips, samples
    from mer.preprocess import evm, flow, masks

    cv2.setNumThreads(1)  # as the jobs (threads: 1)
    table = samples.read_samples(workdir / "results/synthetic/samples.tsv").iloc[part::parts]
    evm_params, masks_params = config["evm"], config["masks"]
    method = config["flow"]["method"]
    flow_params = flow.resolve_params(method, **config["flow"]["params"])
    size = config["preprocess"]["size"]
    start, cpu_start = time.perf_counter(), own_cpu_seconds()
    for row in table.itertuples():
        clip = clips.load_clip(workdir / row.frames_dir, row.onset, row.offset)
        frames, _, _ = evm.onset_apex(
            clip,
            row.apex - row.onset,
            row.fps,
            size=size,
            alpha=evm_params["alpha"],
            low_hz=evm_params["low_hz"],
            high_hz=evm_params["high_hz"],
            temporal_filter=evm_params["temporal_filter"],
            levels=evm_params["levels"],
            lambda_c=evm_params["lambda_c"],
            mode=evm_params["mode"],
        )
        flow_uv = flow.onset_apex_flow(
            frames["onset_magnified"], frames["apex_magnified"], method=method, **flow_params
        )
        flow_bgr = masks.flow_image(
            flow_uv, normalise=masks_params["normalise"], scale_px=masks_params["scale_px"]
        )
        mask = masks.motion_mask(flow_bgr, threshold=masks_params["threshold"])
        masks.masked_apex(frames["apex_gray"], mask)
    return len(table), time.perf_counter() - start, own_cpu_seconds() - cpu_start


def in_parallel(workdir: Path, config: dict, cores: int) -> float:
    """Wall seconds of the in-process run split over `cores` processes running at once: the
    compute floor on this machine, whose cores can slow each other down when all are busy."""
    from concurrent.futures import ProcessPoolExecutor

    start = time.perf_counter()
    with ProcessPoolExecutor(cores) as pool:
        list(
            pool.map(in_process, [workdir] * cores, [config] * cores, range(cores), [cores] * cores)
        )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=26)
    parser.add_argument("--clips", type=int, default=9, help="mean clips per subject")
    parser.add_argument("--seed", type=int, default=70)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--snakefile", type=Path, default=REPO / "Snakefile")
    parser.add_argument("--workdir", type=Path, default=None, help="kept; default: a temp dir")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        workdir.mkdir(parents=True, exist_ok=True)
        config = write_config(workdir, args.subjects, args.clips, args.seed)
        remove_preprocessing(workdir)
        if config["dataset"].get("crop", {}).get("enabled", "auto") is True:
            raise SystemExit("the in-process run does not crop; leave dataset.crop.enabled auto")
        start = time.perf_counter()
        snakemake(args.snakefile, workdir, "results/synthetic/samples.tsv", "--cores", "2")
        print(f"dataset and samples table: {time.perf_counter() - start:.1f} s (not timed below)")
        start, cpu_start = time.perf_counter(), child_cpu_seconds()
        snakemake(args.snakefile, workdir, "preprocess", "--cores", str(args.cores))
        workflow_wall, workflow_cpu = time.perf_counter() - start, child_cpu_seconds() - cpu_start
        n, wall, cpu = in_process(workdir, config)
        parallel_wall = in_parallel(workdir, config, args.cores)
    print(
        f"workflow (snakemake preprocess --cores {args.cores}, {args.snakefile}): {n} clips, "
        f"wall {workflow_wall:.1f} s, CPU {workflow_cpu:.1f} s "
        f"({workflow_cpu / n:.2f} CPU s/clip)"
    )
    print(
        f"in-process (one process, one thread, no writes): {n} clips, wall {wall:.1f} s, "
        f"CPU {cpu:.1f} s ({cpu / n:.2f} CPU s/clip)"
    )
    print(f"CPU ratio {workflow_cpu / cpu:.2f} (workflow CPU / in-process CPU)")
    # The compute alone on all cores at once: no workflow on this machine can be faster.
    print(
        f"compute floor on {args.cores} cores: {parallel_wall:.1f} s wall ({args.cores} in-process "
        f"runs at once, each on its share of the clips; perfect scaling would be "
        f"{cpu / args.cores:.1f} s); target: 60 s"
    )
    print(f"overhead ratio {workflow_wall / wall:.2f}")


if __name__ == "__main__":
    main()
