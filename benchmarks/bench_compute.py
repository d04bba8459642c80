"""What portable mode costs against fast mode on this machine, measured in one run.

    python benchmarks/bench_compute.py [--rounds 3] [--steps 6]

Each measurement runs in its own process (the modes are chosen before torch and OpenCV load),
and the rounds interleave the modes so that the machine's noise hits them alike:
- the MSCNN training step (three ResNet-18 streams, batch 64) at 32 and 64 px: portable
  (kernels capped at AVX2, fp32, one thread) against fast with 1 and 2 threads (the machine's
  kernels; bf16 autocast where `precision: auto` takes it);
- DeepFlow on a 312 x 259 frame pair: OpenCV on its AVX2 code (every mode) against its own
  dispatch (AVX-512 where the CPU has it).
Prints the median samples/s (clips/s) of each and the ratio portable / fast.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CASES = {
    # name: (environment, worker arguments)
    "step32 portable": ({"MER_COMPUTE": "portable"}, ["step", "32", "1"]),
    "step32 fast 1 thread": ({"MER_COMPUTE": "fast"}, ["step", "32", "1"]),
    "step32 fast 2 threads": ({"MER_COMPUTE": "fast"}, ["step", "32", "2"]),
    "step64 portable": ({"MER_COMPUTE": "portable"}, ["step", "64", "1"]),
    "step64 fast 1 thread": ({"MER_COMPUTE": "fast"}, ["step", "64", "1"]),
    "step64 fast 2 threads": ({"MER_COMPUTE": "fast"}, ["step", "64", "2"]),
    "deepflow avx2": ({}, ["deepflow"]),
    "deepflow native": ({"OPENCV_CPU_DISABLE": ""}, ["deepflow"]),
}
PAIRS = [
    ("step32 portable", "step32 fast 1 thread"),
    ("step32 portable", "step32 fast 2 threads"),
    ("step64 portable", "step64 fast 1 thread"),
    ("step64 portable", "step64 fast 2 threads"),
    ("deepflow avx2", "deepflow native"),
]


def step_worker(size: int, threads: int, steps: int) -> dict:
    """Samples/s of the MSCNN training step as train_fold computes it in the selected mode."""
    import torch

    from mer.learn import precision, train
    from mer.learn.model import MSCNN, MSCNN_STREAMS, STREAM_CHANNELS

    device = train.choose_device(threads)
    chosen = precision.resolve("auto", device, size)
    torch.manual_seed(0)
    model = chosen.prepare(MSCNN(MSCNN_STREAMS, 5, 256))
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    batch = {s: torch.rand(64, STREAM_CHANNELS[s], size, size) for s in MSCNN_STREAMS}
    labels = torch.randint(0, 5, (64,))

    def step() -> None:
        optimiser.zero_grad()
        with chosen.autocast():
            logits = model(chosen.inputs(batch, MSCNN_STREAMS, device)).float()
            loss = torch.nn.functional.cross_entropy(logits, labels)
        loss.backward()
        optimiser.step()

    step()  # warm-up: oneDNN builds its kernels
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - start
    return {
        "rate": 64 * steps / seconds,
        "detail": f"{chosen.name}, {torch.get_num_threads()} thread(s), "
        f"kernels {torch.backends.cpu.get_cpu_capability()}",
    }


def deepflow_worker(pairs: int) -> dict:
    """Clips/s of DeepFlow on a smooth textured frame pair moved by a sub-pixel shift."""
    import cv2
    import numpy as np

    from mer.preprocess import flow

    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (312, 259)).astype(np.float32), (0, 0), 3)
    onset = np.clip(texture, 0, 255).astype(np.uint8)
    apex = cv2.warpAffine(texture, np.float32([[1, 0, 0.7], [0, 1, -0.4]]), (259, 312))
    apex = np.clip(apex, 0, 255).astype(np.uint8)
    flow.onset_apex_flow(onset, apex, "deepflow")
    start = time.perf_counter()
    for _ in range(pairs):
        flow.onset_apex_flow(onset, apex, "deepflow")
    disabled = os.environ.get("OPENCV_CPU_DISABLE") or "nothing"
    return {"rate": pairs / (time.perf_counter() - start), "detail": f"disabled: {disabled}"}


def run_case(name: str, steps: int) -> dict:
    environment, arguments = CASES[name]
    env = {**os.environ, **environment}
    command = [sys.executable, __file__, "--worker", *arguments, "--steps", str(steps)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6, help="training steps (DeepFlow pairs)")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind == "step":
            result = step_worker(int(rest[0]), int(rest[1]), args.steps)
        else:
            result = deepflow_worker(args.steps)
        print(json.dumps(result))
        return
    from mer import compute

    isa = " ".join(flag for flag in compute.ISA_FLAGS if flag in compute.cpu_flags())
    print(f"cpu: {compute.cpu_model()} ({compute.cpu_family()}: {isa}), {os.cpu_count()} cores")
    rates = {name: [] for name in CASES}
    details = {}
    for _ in range(args.rounds):
        for name in CASES:
            result = run_case(name, args.steps)
            rates[name].append(result["rate"])
            details[name] = result["detail"]
    for name in CASES:
        print(f"{name:24s} {statistics.median(rates[name]):8.1f} /s  ({details[name]})")
    for portable, fast in PAIRS:
        ratio = statistics.median(rates[portable]) / statistics.median(rates[fast])
        print(f"{portable} / {fast}: {ratio:.2f}")


if __name__ == "__main__":
    main()
