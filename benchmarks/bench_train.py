"""Training step and epoch time against their pure compute (docs/training.md, "Speed").

    python benchmarks/bench_train.py [--rows 640] [--val-clips 60] [--repeats 5] [--size 64]
                                     [--parts sabcde]

Everything is measured in this run on the CPU with torch.set_num_threads(2), as the median of
--repeats interleaved rounds after a warm-up (the machine is noisy); PASS/FAIL is on the
median over rounds of the paired ratio, the ratio of the fastest times is printed beside it:

(s) the training step as train_fold runs it against the step before small-map convolutions
    and the fused optimiser (plain nn.Conv2d everywhere, torch's default SGD), same model,
    same batch, interleaved, each mode and thread count in its own process: portable (the
    default, 1 thread) and fast (1 and 2 threads), at 32 and 64 px. Printed: samples/s of
    both, the median of the paired per-round ratios, and the step's FLOP/s (counted by
    torch.utils.flop_counter) as a share of this core's rate on a large fp32 matrix product
    measured in the same process. Target: >= 2x at 32 px, portable.
(a) one MSCNN training step (three ResNet-18 trunks flow_image, apex_gray, masked_apex, the
    dense layer and the head; forward, backward, SGD step) against three single ResNet-18
    steps, each trunk with the matching first convolution and its own linear classifier, on
    the same batch. Target: MSCNN <= 1.1x the three single steps (no overhead beyond trunks).
(b) the training pass of an epoch as mer.learn.train.train_fold runs it (DataLoader over a
    ShardDataset read from shards written by mer.learn.shards.write_shard) against the same steps on
    batches already stacked in memory, each pure step right after its real one so that the
    machine's noise hits both alike. Target: <= 1.15x. The extras train_fold adds to every
    epoch (BatchNorm recalibration over batchnorm_rows training rows, the validation
    prediction, the training F1, the copy of the best weights) are reported as fractions of
    the whole epoch; they are not part of the target.

(c) the training step in the default precision (TrainConfig.precision "auto": bf16 autocast
    and channels_last on a CPU with native bf16, mer.learn.precision) against the plain fp32
    eager step, same batch, interleaved. Target: >= 75 samples/s at 64 px, batch
    64, 2 threads, and speedup >= 1.5. torch.compile was measured and left out: 98 s of
    compilation per fold process and no faster a step afterwards (docs/training.md).
(d) agreement: every LOSO fold of an easy 4-subject problem (class = direction of motion)
    trained in fp32 and in bf16 (at 32 px, where "auto" itself would keep fp32); pooled
    accuracy and UF1 of each, and the training loss per epoch of the first fold side by side.
(e) parallel folds: two 1-thread training processes at once against one 2-thread process,
    steps per second in total (what `threads:` of the train rule should be).
The last line is `speedup X` of (c).

`training_pass` mirrors the epoch loop of train_fold line for line; keep it in step with it.
"""

from __future__ import annotations

import os

# The speed levers measured here (bf16, AMX, threads) are fast mode's (mer.compute);
# benchmarks/bench_compute.py measures portable mode against it.
os.environ.setdefault("MER_COMPUTE", "fast")

import argparse
import copy
import itertools
import json
import multiprocessing
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torchvision
from sklearn.metrics import f1_score
from torch import nn

from mer.learn import augment, shards, train
from mer.learn import precision as precisions
from mer.learn.inference import predict, recalibrate_batchnorm, scores
from mer.learn.model import MSCNN, MSCNN_STREAMS, STREAM_CHANNELS
from mer.learn.reader import ShardDataset
from mer.learn.train import TrainConfig

CLASSES = ["a", "b", "c", "d", "e"]
STEP_SPEEDUP_TARGET = 2.0  # (s): the default step against the step before, 32 px, portable
STEP_CASES = [("portable", 1, 32), ("fast", 1, 32), ("fast", 2, 32)]
STEP_CASES += [(mode, threads, 64) for mode, threads, _ in STEP_CASES]
STEP_TARGET = 1.1
EPOCH_TARGET = 1.15
RATE_TARGET = 75  # samples/s of the default step, 64 px, batch 64, 2 threads
SPEEDUP_TARGET = 1.5


def write_subject_shards(folder, prefix, n_samples, n_subjects, size, rng) -> list[Path]:
    """Shards of synthetic subjects (a moving bump on a noisy field, a random apex image),
    augmented 10x by mer.learn.augment exactly as the shards stage does."""
    working = 2 * size
    yy, xx = np.mgrid[0:working, 0:working].astype(np.float32)
    paths = []
    for k, indices in enumerate(np.array_split(np.arange(n_samples), n_subjects)):
        sample_variants = []
        for _ in indices:
            centre_x, centre_y = rng.uniform(0.25 * working, 0.75 * working, 2)
            bump = np.exp(-((xx - centre_x) ** 2 + (yy - centre_y) ** 2) / (working * 1.5))
            flow_uv = bump[..., None] * rng.normal(0, 0.3, 2)
            flow_uv = flow_uv + rng.normal(0, 0.02, (working, working, 2))
            apex_gray = rng.integers(60, 200, (working, working), dtype=np.uint8)
            sample_variants.append(augment.variants(flow_uv.astype(np.float32), apex_gray, size))
        subject = f"{prefix}{k}"
        path = Path(folder, f"{subject}.h5")
        shards.write_shard(
            path,
            subject,
            [f"{subject}_{i}" for i in indices],
            [int(i % len(CLASSES)) for i in indices],
            sample_variants,
            CLASSES,
            {},
            {},
        )
        paths.append(path)
    return paths


def sgd(parameters, config: TrainConfig) -> torch.optim.SGD:
    return torch.optim.SGD(
        parameters,
        lr=config.learning_rate,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )


def single_trunk(channels: int) -> nn.Module:
    """A torchvision ResNet-18 with the stream's first convolution and its own classifier."""
    trunk = torchvision.models.resnet18(weights=None, num_classes=len(CLASSES))
    trunk.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return trunk


def timed(step, device: torch.device | None = None) -> float:
    """Seconds of one call; on CUDA, until the queued kernels have run."""
    start = time.perf_counter()
    step()
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def compare_steps(batch_size: int, size: int, repeats: int, config: TrainConfig) -> dict:
    """Median seconds of an MSCNN step and of each single-trunk step, interleaved per round,
    and the median over rounds of MSCNN / (sum of the three single steps)."""
    generator = torch.Generator().manual_seed(1)
    batch = {
        s: torch.rand(batch_size, STREAM_CHANNELS[s], size, size, generator=generator)
        for s in MSCNN_STREAMS
    }
    labels = torch.randint(0, len(CLASSES), (batch_size,), generator=generator)
    torch.manual_seed(0)
    model = MSCNN(MSCNN_STREAMS, len(CLASSES), config.dense_units).train()
    model_optimiser = sgd(model.parameters(), config)
    trunks = {s: single_trunk(STREAM_CHANNELS[s]).train() for s in MSCNN_STREAMS}
    trunk_optimisers = {s: sgd(trunks[s].parameters(), config) for s in MSCNN_STREAMS}

    def mscnn_step():
        model_optimiser.zero_grad()
        nn.functional.cross_entropy(model(batch), labels).backward()
        model_optimiser.step()

    def trunk_step(stream):
        trunk_optimisers[stream].zero_grad()
        nn.functional.cross_entropy(trunks[stream](batch[stream]), labels).backward()
        trunk_optimisers[stream].step()

    steps = {"mscnn": mscnn_step}
    steps.update({s: (lambda s=s: trunk_step(s)) for s in MSCNN_STREAMS})
    for step in steps.values():  # warm-up
        step()
    times = {name: [] for name in steps}
    for round_index in range(repeats):
        order = list(steps) if round_index % 2 == 0 else list(steps)[::-1]
        for name in order:
            times[name].append(timed(steps[name]))
    result = {name: float(np.median(values)) for name, values in times.items()}
    # Noise only ever adds time: the fastest times give a second, load-resistant reading
    # (whole rounds: a sum of three separate minima would flatter the single steps).
    singles = [sum(times[s][r] for s in MSCNN_STREAMS) for r in range(repeats)]
    result["fastest ratio"] = min(times["mscnn"]) / min(singles)
    result["ratio"] = float(
        np.median([m / t for m, t in zip(times["mscnn"], singles, strict=True)])
    )
    return result


def training_pass(
    model, precision, optimiser, scaler, loader, device, between
) -> tuple[float, list, list]:
    """One epoch's training pass as train_fold runs it, timed step by step so that `between`
    (the matching pure-compute step) can run, untimed, after each step; the fetch of the next
    batch from the loader counts to the pass. Returns (seconds, labels, predictions)."""
    seconds = 0.0
    start = time.perf_counter()
    model.train()
    losses, correct, seen, predicted_all, labels_all = 0.0, 0, 0, [], []
    for step, batch in enumerate(loader):
        labels = batch["label"].to(device)
        optimiser.zero_grad()
        with precision.autocast():
            logits = model(precision.inputs(batch, model.streams, device)).float()
            loss = nn.functional.cross_entropy(logits, labels)
        scaler.scale(loss).backward()
        scaler.step(optimiser)
        scaler.update()
        losses += loss.item() * len(labels)
        predicted = logits.argmax(1)
        correct += int((predicted == labels).sum())
        seen += len(labels)
        predicted_all.append(predicted.cpu())
        labels_all.append(labels.cpu())
        seconds += time.perf_counter() - start
        between(step)
        start = time.perf_counter()
    seconds += time.perf_counter() - start
    return seconds, labels_all, predicted_all


def pure_step(model, precision, optimiser, inputs, labels) -> None:
    """Forward, backward and SGD step on a batch already stacked in memory, nothing else."""
    model.train()
    optimiser.zero_grad()
    with precision.autocast():
        logits = model(inputs).float()
    nn.functional.cross_entropy(logits, labels).backward()
    optimiser.step()


def compare_epoch(fit_set, val_set, repeats: int, config: TrainConfig, seed: int) -> dict:
    """Median seconds of the real training pass, of the same steps as pure compute (each pure
    step right after its real one, so that the machine's noise hits both alike), and of each
    per-epoch extra of train_fold."""
    device = torch.device("cpu")
    n_classes = len(fit_set.classes)
    torch.manual_seed(seed)
    precision = precisions.resolve(config.precision, device, fit_set.flow_image.shape[-1])
    model = precision.prepare(MSCNN(config.streams, n_classes, config.dense_units).to(device))
    optimiser = sgd(model.parameters(), config)
    scaler = torch.amp.GradScaler(device.type, enabled=precision.scales_loss)
    generator = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(
        fit_set, batch_size=config.batch_size, shuffle=True, generator=generator
    )
    # Same number of steps and batch sizes as the loader, already scaled and stacked.
    stacked = []
    for rows in torch.arange(len(fit_set)).split(config.batch_size):
        inputs = {s: getattr(fit_set, s)[rows].float().div(255.0) for s in config.streams}
        stacked.append((precision.inputs(inputs, config.streams, device), fit_set.labels[rows]))
    val_labels = val_set.labels.numpy()
    passed = {}

    def pure(step):
        passed["pure"] += timed(lambda: pure_step(model, precision, optimiser, *stacked[step]))

    def real():
        passed["pure"] = 0.0
        passed["real"], passed["labels"], passed["predicted"] = training_pass(
            model, precision, optimiser, scaler, loader, device, pure
        )

    def train_f1():
        f1_score(
            torch.cat(passed["labels"]),
            torch.cat(passed["predicted"]),
            labels=range(n_classes),
            average="macro",
            zero_division=0,
        )

    def recalibrate():
        recalibrate_batchnorm(model, fit_set, device, config.batchnorm_rows, generator, precision)

    def validate():
        _, probabilities = predict(model, val_set, device)
        scores(val_labels, probabilities, n_classes)

    def copy_best():
        copy.deepcopy(model.state_dict())

    # In train_fold's order after the pass; the copy only in epochs that improve.
    extras = {
        "recalibrate": recalibrate,
        "train F1": train_f1,
        "validate": validate,
        "copy best": copy_best,
    }
    # Warm-up: one step of each path, each extra once.
    passed["pure"] = 0.0
    _, passed["labels"], passed["predicted"] = training_pass(
        model, precision, optimiser, scaler, [next(iter(loader))], device, pure
    )
    for extra in extras.values():
        extra()
    times = {name: [] for name in ["real", "pure", *extras]}
    for _ in range(repeats):
        real()
        times["real"].append(passed["real"])
        times["pure"].append(passed["pure"])
        for name, extra in extras.items():
            times[name].append(timed(extra))
    ratios = [real / pure for real, pure in zip(times["real"], times["pure"], strict=True)]
    result = {name: float(np.median(values)) for name, values in times.items()}
    result["ratio"] = float(np.median(ratios))
    result["fastest ratio"] = min(times["real"]) / min(times["pure"])
    result["steps"] = len(stacked)
    return result


def compare_precision(
    batch_size: int, size: int, repeats: int, config: TrainConfig, device: torch.device
) -> dict:
    """Median seconds of the fp32 eager MSCNN step and of the step in the default precision,
    same start weights and batch, interleaved per round; median and fastest paired speedup;
    on CUDA the peak memory of each (bytes)."""
    generator = torch.Generator().manual_seed(2)
    batch = {
        s: torch.rand(batch_size, STREAM_CHANNELS[s], size, size, generator=generator)
        for s in MSCNN_STREAMS
    }
    labels = torch.randint(0, len(CLASSES), (batch_size,), generator=generator).to(device)
    chosen = {
        "fp32": precisions.resolve("fp32", device, size),
        "default": precisions.resolve(config.precision, device, size),
    }
    steps = {}
    for name, precision in chosen.items():
        torch.manual_seed(0)
        model = MSCNN(MSCNN_STREAMS, len(CLASSES), config.dense_units).to(device)
        model = precision.prepare(model)
        inputs = precision.inputs(batch, MSCNN_STREAMS, device)
        optimiser = sgd(model.parameters(), config)
        steps[name] = lambda m=model, p=precision, o=optimiser, x=inputs: pure_step(
            m, p, o, x, labels
        )
    result = {}
    for name, step in steps.items():  # warm-up, measuring the peak memory on CUDA
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
            result[f"{name} peak bytes"] = torch.cuda.max_memory_allocated()
    times = {name: [] for name in steps}
    for round_index in range(repeats):
        for name in list(steps) if round_index % 2 == 0 else list(steps)[::-1]:
            times[name].append(timed(steps[name], device))
    result.update({name: float(np.median(values)) for name, values in times.items()})
    result["speedup"] = float(
        np.median([f / d for f, d in zip(times["fp32"], times["default"], strict=True)])
    )
    result["fastest speedup"] = min(times["fp32"]) / min(times["default"])
    result["default name"] = chosen["default"].name
    return result


def easy_shards(folder, n_subjects: int, per_subject: int, size: int, rng) -> list[Path]:
    """Subjects whose clips move in their class's direction (sideways, down, up): easy."""
    yy, xx = np.mgrid[0:48, 0:48].astype(np.float32)
    paths = []
    for k in range(n_subjects):
        labels = [i % 3 for i in range(per_subject)]
        sample_variants = []
        for label in labels:
            centre = rng.uniform(18, 30, 2)
            bump = np.exp(-((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / 80)
            angle = np.deg2rad([0, 90, -90][label] + rng.normal(0, 10))
            field = bump[..., None] * np.float32([np.cos(angle), np.sin(angle)])
            field += rng.normal(0, 0.03, field.shape).astype(np.float32)
            apex = rng.integers(80, 180, (48, 48), dtype=np.uint8)
            sample_variants.append(augment.variants(field.astype(np.float32), apex, size))
        path = Path(folder, f"s{k}.h5")
        names = [f"s{k}_c{i}" for i in range(per_subject)]
        shards.write_shard(path, f"s{k}", names, labels, sample_variants, CLASSES[:3], {}, {})
        paths.append(path)
    return paths


def agreement(threads: int, seed: int) -> dict:
    """Pooled accuracy/UF1 of every LOSO fold of the easy problem in fp32 and in the default
    precision, and the first fold's training loss per epoch in each."""
    settings = dict(max_epochs=8, patience=3, head_epochs=10, dense_units=32, batch_size=32)
    result = {}
    with tempfile.TemporaryDirectory() as folder:
        paths = easy_shards(folder, 4, 6, 32, np.random.default_rng(seed))
        for name in ("fp32", "bf16"):  # explicit: "auto" keeps fp32 at 32 px
            config = TrainConfig.from_dict({**settings, "precision": name})
            start = time.perf_counter()
            folds = [
                train.train_fold(paths, f"s{k}", config, seed, threads, log=lambda _: None)
                for k in range(4)
            ]
            pooled = pd.concat([f.predictions for f in folds])
            result[name] = {
                "seconds": time.perf_counter() - start,
                "precision": folds[0].fold["precision"],
                "accuracy": float((pooled.true_label == pooled.predicted_label).mean()),
                "uf1": float(f1_score(pooled.true_label, pooled.predicted_label, average="macro")),
                "loss": folds[0].history["train_loss"].tolist(),
            }
    return result


def step_loop(threads: int, steps: int, size: int, batch_size: int, queue) -> None:
    """A process that trains `steps` default-precision steps on `threads` threads."""
    torch.set_num_threads(threads)
    config = TrainConfig(batch_size=batch_size)
    precision = precisions.resolve(config.precision, torch.device("cpu"), size)
    generator = torch.Generator().manual_seed(3)
    batch = {
        s: torch.rand(batch_size, STREAM_CHANNELS[s], size, size, generator=generator)
        for s in MSCNN_STREAMS
    }
    inputs = precision.inputs(batch, MSCNN_STREAMS, torch.device("cpu"))
    labels = torch.randint(0, len(CLASSES), (batch_size,), generator=generator)
    model = precision.prepare(MSCNN(MSCNN_STREAMS, len(CLASSES), config.dense_units))
    optimiser = sgd(model.parameters(), config)
    pure_step(model, precision, optimiser, inputs, labels)  # warm-up
    queue.put("ready")
    start = time.perf_counter()
    for _ in range(steps):
        pure_step(model, precision, optimiser, inputs, labels)
    queue.put(time.perf_counter() - start)


def parallel_folds(steps: int, size: int, batch_size: int) -> dict:
    """Samples/s in total of one 2-thread process against two 1-thread processes at once."""
    context = multiprocessing.get_context("spawn")
    result = {}
    for name, layout in {"one 2-thread fold": [2], "two 1-thread folds": [1, 1]}.items():
        queue = context.Queue()
        each = steps if len(layout) == 1 else steps // 2
        workers = [
            context.Process(target=step_loop, args=(t, each, size, batch_size, queue))
            for t in layout
        ]
        for worker in workers:
            worker.start()
        reports = [queue.get() for _ in range(2 * len(workers))]
        for worker in workers:
            worker.join()
        seconds = max(r for r in reports if r != "ready")
        result[name] = each * len(layout) * batch_size / seconds
    return result


def step_worker(threads: int, size: int, rounds: int) -> dict:
    """(s) in this process's compute mode: the current step against the step before, paired."""
    from torch.utils.flop_counter import FlopCounterMode

    from mer.learn.model import SmallMapConv2d

    device = train.choose_device(threads)
    chosen = precisions.resolve("auto", device, size)
    torch.manual_seed(0)
    current = chosen.prepare(MSCNN(MSCNN_STREAMS, len(CLASSES), 256))
    before = copy.deepcopy(current)
    for module in before.modules():
        if type(module) is SmallMapConv2d:
            module.__class__ = nn.Conv2d
    generator = torch.Generator().manual_seed(1)
    batch = {
        s: torch.rand(64, STREAM_CHANNELS[s], size, size, generator=generator)
        for s in MSCNN_STREAMS
    }
    labels = torch.randint(0, len(CLASSES), (64,), generator=generator)

    def stepper(model, fused: bool):
        optimiser = torch.optim.SGD(
            model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, fused=fused
        )

        def step() -> None:
            optimiser.zero_grad()
            with chosen.autocast():
                logits = model(chosen.inputs(batch, MSCNN_STREAMS, device)).float()
                loss = nn.functional.cross_entropy(logits, labels)
            loss.backward()
            optimiser.step()

        step()  # warm-up: oneDNN builds its kernels, SGD its momentum
        return step

    steps = {"current": stepper(current, True), "before": stepper(before, False)}
    with FlopCounterMode(display=False) as counter:
        steps["current"]()
    seconds = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            seconds[name].append(timed(step))
    dtype = torch.bfloat16 if chosen.name == "bf16" else torch.float32
    a, b = torch.rand(1024, 1024, dtype=dtype), torch.rand(1024, 1024, dtype=dtype)
    torch.mm(a, b)
    matmul = min(timed(lambda: torch.mm(a, b)) for _ in range(5))
    ratios = [old / new for old, new in zip(seconds["before"], seconds["current"], strict=True)]
    return {
        "current": 64 / float(np.median(seconds["current"])),
        "before": 64 / float(np.median(seconds["before"])),
        "ratio": float(np.median(ratios)),
        "gflops": counter.get_total_flops() / float(np.median(seconds["current"])) / 1e9,
        "matmul gflops": 2 * 1024**3 / matmul / 1e9,
        "detail": f"{chosen.name}, {torch.get_num_threads()} thread(s), "
        f"kernels {torch.backends.cpu.get_cpu_capability()}",
    }


def report_step_speed(args, config: TrainConfig) -> None:
    """(s) every case of STEP_CASES in its own process."""
    print("\n(s) training step as train_fold runs it, against the step before (plain convs)")
    for mode, threads, size in STEP_CASES:
        command = [sys.executable, __file__, "--step-worker", str(threads), str(size)]
        command += ["--repeats", str(args.repeats)]
        env = {**os.environ, "MER_COMPUTE": mode}
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        target = ""
        if (mode, size) == ("portable", 32):
            target = f" {verdict(-r['ratio'], -STEP_SPEEDUP_TARGET)} (>= {STEP_SPEEDUP_TARGET}x)"
        print(
            f"  {mode:8s} {threads} thread(s) {size} px ({r['detail']}): {r['current']:6.1f} "
            f"samples/s against {r['before']:6.1f}, {r['ratio']:.2f}x{target}; "
            f"{r['gflops']:.1f} GFLOP/s, {r['gflops'] / r['matmul gflops']:.0%} of a "
            f"1024^3 matrix product's {r['matmul gflops']:.1f} in the same precision"
        )


def verdict(ratio: float, target: float) -> str:
    return "PASS" if ratio <= target else "FAIL"


def report_steps(args, config: TrainConfig) -> None:
    """(a) MSCNN step against three single ResNet-18 steps."""
    steps = compare_steps(args.batch, args.size, args.repeats, config)
    singles = sum(steps[s] for s in MSCNN_STREAMS)
    print("\n(a) training step, forward + backward + SGD step")
    for stream in MSCNN_STREAMS:
        print(
            f"  single ResNet-18 {stream} ({STREAM_CHANNELS[stream]} ch): "
            f"{steps[stream]:.3f} s, {args.batch / steps[stream]:,.1f} samples/s"
        )
    print(f"  three single steps, summed: {singles:.3f} s, {args.batch / singles:,.1f} samples/s")
    print(
        f"  MSCNN (3 streams): {steps['mscnn']:.3f} s, {args.batch / steps['mscnn']:,.1f} samples/s"
    )
    print(
        f"  MSCNN / three single steps: {steps['ratio']:.3f}x "
        f"{verdict(steps['ratio'], STEP_TARGET)} (no overhead beyond the trunks: "
        f"<= {STEP_TARGET}x); fastest round against fastest: {steps['fastest ratio']:.3f}x"
    )


def report_epoch(args, config: TrainConfig) -> None:
    """(b) training pass against pure compute, and the per-epoch extras."""
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        fit_paths = write_subject_shards(folder, "fit", args.rows // 10, 4, args.size, rng)
        val_paths = write_subject_shards(folder, "val", args.val_clips, 2, args.size, rng)
        written = time.perf_counter() - start
        fit_set = ShardDataset(fit_paths, {"fit0", "fit1", "fit2", "fit3"})
        val_set = ShardDataset(val_paths, {"val0", "val1"}, augmentations={0})
    print(
        f"\n(b) epoch: {len(fit_set)} training rows, {len(val_set)} validation originals "
        f"(shards written in {written:.1f} s)"
    )
    epoch = compare_epoch(fit_set, val_set, args.repeats, config, args.seed)
    rows = len(fit_set)
    print(
        f"  pure compute ({epoch['steps']} steps on stacked batches): {epoch['pure']:.2f} s, "
        f"{rows / epoch['pure']:,.1f} samples/s"
    )
    print(
        f"  training pass as train_fold (DataLoader over ShardDataset): {epoch['real']:.2f} s, "
        f"{rows / epoch['real']:,.1f} samples/s"
    )
    print(
        f"  training pass / pure compute: {epoch['ratio']:.3f}x "
        f"{verdict(epoch['ratio'], EPOCH_TARGET)} (input pipeline and bookkeeping: "
        f"<= {EPOCH_TARGET}x); fastest round against fastest: {epoch['fastest ratio']:.3f}x"
    )
    extra_rows = {
        "recalibrate": f"BatchNorm recalibration ({min(config.batchnorm_rows, rows)} rows)",
        "validate": f"validation prediction + scores ({len(val_set)} originals)",
        "train F1": "training F1",
        "copy best": "copy of the best weights (epochs that improve)",
    }
    whole = epoch["real"] + sum(epoch[name] for name in extra_rows)
    print(f"  per-epoch extras of train_fold, as fractions of the whole epoch ({whole:.2f} s):")
    for name, label in extra_rows.items():
        print(f"    {label}: {epoch[name]:.3f} s, {epoch[name] / whole:.1%}")
    extras = whole - epoch["real"]
    print(
        f"    all extras: {extras:.2f} s, {extras / whole:.1%} of the epoch; "
        f"whole epoch / pure compute: {whole / epoch['pure']:.2f}x (reported, no target)"
    )


def report_precision(args, config: TrainConfig) -> float:
    """(c) default-precision step against the fp32 eager step; returns the speedup."""
    device = torch.device(args.device)
    result = compare_precision(args.batch, args.size, args.repeats, config, device)
    print(
        f"\n(c) training step on {args.device}, {args.size} px, in the default precision "
        f"({result['default name']}) vs fp32 eager"
    )
    for name in ("fp32", "default"):
        memory = result.get(f"{name} peak bytes")
        print(
            f"  {name}: {result[name]:.3f} s, {args.batch / result[name]:,.1f} samples/s"
            + ("" if memory is None else f", peak memory {memory / 2**20:,.0f} MiB")
        )
    rate = args.batch / result["default"]
    print(
        f"  {rate:,.1f} samples/s {verdict(-rate, -RATE_TARGET)} (>= {RATE_TARGET}); speedup "
        f"{result['speedup']:.2f}x {verdict(-result['speedup'], -SPEEDUP_TARGET)} "
        f"(>= {SPEEDUP_TARGET}x); fastest round against fastest: {result['fastest speedup']:.2f}x"
    )
    return result["speedup"]


def report_agreement(args, config: TrainConfig) -> None:
    """(d) the easy problem's LOSO folds in fp32 and in the default precision."""
    result = agreement(args.threads, args.seed)
    print("\n(d) agreement: 4 LOSO folds of an easy 3-class problem (chance 1/3), 32 px")
    for name, run in result.items():
        print(
            f"  {name} ({run['precision']}): pooled accuracy {run['accuracy']:.3f}, "
            f"UF1 {run['uf1']:.3f}, {run['seconds']:.1f} s"
        )
    print("  first fold, training loss per epoch (fp32 | bf16):")
    curves = itertools.zip_longest(result["fp32"]["loss"], result["bf16"]["loss"])
    for epoch, losses in enumerate(curves, 1):  # None: that run had stopped early
        print(f"    {epoch}: " + " | ".join("-" if v is None else f"{v:.4f}" for v in losses))


def report_parallel(args, config: TrainConfig) -> None:
    """(e) two 1-thread folds at once against one 2-thread fold."""
    result = parallel_folds(4 * args.repeats, args.size, args.batch)
    print("\n(e) parallel folds, default precision, samples/s in total:")
    for name, rate in result.items():
        print(f"  {name}: {rate:,.1f}")
    better = max(result, key=result.get)
    print(f"  more throughput: {better} ({result[better] / min(result.values()):.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=640, help="training rows (10 per sample)")
    parser.add_argument("--val-clips", type=int, default=60, help="validation originals")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parts", default="sabcde", help="which parts to run; c always runs")
    parser.add_argument("--device", default="cpu", help="device of part c: cpu | cuda")
    parser.add_argument("--step-worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step_worker:
        print(json.dumps(step_worker(*args.step_worker, args.repeats)))
        return
    sys.stdout.reconfigure(line_buffering=True)  # each part as soon as it is measured
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    # As train_fold does on the CPU.
    torch.use_deterministic_algorithms(True, warn_only=True)
    config = TrainConfig(batch_size=args.batch)
    load_before = os.getloadavg()[0]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.size}px, "
        f"batch {args.batch}, median of {args.repeats} interleaved rounds after a warm-up"
    )
    parts = {
        "s": report_step_speed,
        "a": report_steps,
        "b": report_epoch,
        "d": report_agreement,
        "e": report_parallel,
    }
    for part, report in parts.items():
        if part in args.parts:
            report(args, config)
    speedup = report_precision(args, config)
    print(
        f"\nload average (1 min) {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, "
        f"{os.cpu_count()} cores; this run adds about {args.threads}: more means other work "
        "shared the CPU and inflated the times (the paired ratios suffer less)"
    )
    print(f"speedup {speedup:.2f}")


if __name__ == "__main__":
    main()
