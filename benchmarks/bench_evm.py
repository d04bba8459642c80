"""Speed and memory of mer.preprocess.evm.magnify, as ratios against a plain memory pass in the
same run.

    python benchmarks/bench_evm.py [--repeats 5]

Reference: one uint8 read+write pass over the same clip (np.copy), the cheapest thing any
per-clip stage can do. A float32 conversion pass (the size of magnify's output) is printed too.
Peak memory is the growth of the maximum resident set size during one magnify call, measured
in a fresh subprocess (it includes the float32 output, 4x the size of a uint8 clip).

Target: 128x480x640 uint8 gray at alpha 8, ideal filter: >= 1,200 frames/s and
<= 0.5 GB peak extra memory on a 2-core machine. Timings are medians of --repeats runs after
one warm-up. Other processes on the machine slow it, so the CPU they used during the run is
printed (in cores, from /proc/stat minus this process and its children).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from mer.preprocess.evm import magnify

TARGET_FRAMES_PER_S = 1200.0
TARGET_PEAK_GB = 0.5
FPS = 200.0

# name, clip shape, magnify arguments, whether the targets apply
CASES = [
    ("gray 128x480x640 alpha 8 ideal", (128, 480, 640), {"alpha": 8.0}, True),
    ("gray 64x256x256 alpha 8 ideal", (64, 256, 256), {"alpha": 8.0}, False),
    ("colour 64x256x256x3 alpha 8 ideal", (64, 256, 256, 3), {"alpha": 8.0}, False),
    ("gray 128x480x640 alpha 8 iir", (128, 480, 640), {"temporal_filter": "iir"}, False),
    (
        "gray 128x480x640 alpha 8 butterworth",
        (128, 480, 640),
        {"temporal_filter": "butterworth"},
        False,
    ),
    ("gray 128x480x640 filter_only ideal", (128, 480, 640), {"mode": "filter_only"}, False),
]


def random_clip(shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)


def median_seconds(run, repeats: int) -> float:
    run()  # warm-up: first-touch page faults, FFT plans, thread pools
    durations = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        durations.append(time.perf_counter() - start)
    return statistics.median(durations)


def peak_extra_gb(shape: tuple[int, ...], arguments: dict) -> float:
    """Peak resident-set growth of one magnify call, in a fresh interpreter.

    Reads VmHWM/VmRSS from /proc (ru_maxrss of a child can carry its parent's size over
    fork+exec) after resetting the high-water mark to the current size (clear_refs "5").
    """
    child = f"""
import json, numpy as np
from mer.preprocess.evm import magnify
def status_bytes(field):
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024
clip = np.random.default_rng(0).integers(0, 256, size={shape!r}, dtype=np.uint8)
resident_before = status_bytes("VmRSS")
with open("/proc/self/clear_refs", "w") as clear_refs:
    clear_refs.write("5")
output = magnify(clip, {FPS}, **{arguments!r})
print(json.dumps((status_bytes("VmHWM") - resident_before) / 1e9))
"""
    result = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def busy_cpu_seconds() -> float:
    """CPU seconds all processes have spent busy since boot (Linux /proc/stat)."""
    with open("/proc/stat") as stat:
        ticks = [int(field) for field in stat.readline().split()[1:]]
    idle_ticks = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle_ticks) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    print(f"mer.preprocess.evm benchmark, {os.cpu_count()} CPUs")
    start_wall, start_busy, start_own = time.perf_counter(), busy_cpu_seconds(), own_cpu_seconds()
    print(
        f"{'case':38} {'frames/s':>9} {'ms':>8} {'x ref':>7} {'x f32':>7} {'peak GB':>8}  verdict"
    )
    all_pass = True
    for name, shape, arguments, has_targets in CASES:
        clip = random_clip(shape)
        reference_s = median_seconds(lambda clip=clip: np.copy(clip), args.repeats)
        float_pass_s = median_seconds(lambda clip=clip: clip.astype(np.float32), args.repeats)
        magnify_s = median_seconds(
            lambda clip=clip, arguments=arguments: magnify(clip, FPS, **arguments), args.repeats
        )
        frames_per_s = shape[0] / magnify_s
        peak_gb = peak_extra_gb(shape, arguments)
        verdict = ""
        if has_targets:
            passed = frames_per_s >= TARGET_FRAMES_PER_S and peak_gb <= TARGET_PEAK_GB
            all_pass &= passed
            verdict = (
                f"{'PASS' if passed else 'FAIL'} (>= {TARGET_FRAMES_PER_S:.0f} frames/s, "
                f"<= {TARGET_PEAK_GB} GB)"
            )
        print(
            f"{name:38} {frames_per_s:9.0f} {magnify_s * 1e3:8.1f} "
            f"{magnify_s / reference_s:7.1f} {magnify_s / float_pass_s:7.1f} {peak_gb:8.3f}  "
            f"{verdict}"
        )
        print(
            f"{'':38} reference uint8 pass {reference_s * 1e3:.1f} ms, "
            f"float32 pass {float_pass_s * 1e3:.1f} ms"
        )
    others_busy = (busy_cpu_seconds() - start_busy) - (own_cpu_seconds() - start_own)
    others_cores = max(0.0, others_busy) / (time.perf_counter() - start_wall)
    print(f"CPU used by other processes during the run: {others_cores:.2f} cores")
    return 0 if all_pass else 1


if __name__ == "__main__":
    sys.exit(main())
