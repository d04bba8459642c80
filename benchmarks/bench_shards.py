"""Shard writing time, shard sizes and reader throughput beside the training throughput.

    python benchmarks/bench_shards.py [--samples 114] [--subjects 8] [--size 64]

Everything is measured in this run: writing one shard per subject for a default-sized
synthetic set (fields 128x128 -> 64x64 inputs), reading them back through the torch
DataLoader the trainer uses, and, as the reference, a training step of three ResNet-18
trunks (the MSCNN streams) on a batch of 64. Reading must be far faster than training.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision

from mer.learn import augment, shards
from mer.learn.reader import ShardDataset


def fake_subject(rng, n_samples, working=128, size=64):
    yy, xx = np.mgrid[0:working, 0:working].astype(np.float32)
    variants = []
    for _ in range(n_samples):
        bump = np.exp(-((xx - rng.uniform(30, 98)) ** 2 + (yy - rng.uniform(30, 98)) ** 2) / 200)
        field = bump[..., None] * rng.normal(0, 0.3, 2) + rng.normal(0, 0.02, (working,) * 2 + (2,))
        apex = rng.integers(60, 200, (working, working), dtype=np.uint8)
        variants.append(augment.variants(field.astype(np.float32), apex, size))
    return variants


def train_step_rate(batch: int, size: int, repeats: int = 5) -> float:
    """Samples/s of a forward+backward+SGD step through three ResNet-18 trunks."""
    trunks = []
    for channels in (3, 1, 1):
        trunk = torchvision.models.resnet18(weights=None, num_classes=5)
        trunk.conv1 = torch.nn.Conv2d(channels, 64, 7, 2, 3, bias=False)
        trunks.append(trunk)
    params = [p for t in trunks for p in t.parameters()]
    optimiser = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    inputs = [torch.rand(batch, c, size, size) for c in (3, 1, 1)]
    labels = torch.randint(0, 5, (batch,))
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        loss = sum(
            torch.nn.functional.cross_entropy(t(x), labels)
            for t, x in zip(trunks, inputs, strict=True)
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        times.append(time.perf_counter() - start)
    return batch / float(np.median(times[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=114)
    parser.add_argument("--subjects", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    per_subject = np.array_split(np.arange(args.samples), args.subjects)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        augment_time = 0.0
        paths = []
        for k, indices in enumerate(per_subject):
            t0 = time.perf_counter()
            variants = fake_subject(rng, len(indices), size=args.size)
            augment_time += time.perf_counter() - t0
            path = Path(folder, f"s{k}.h5")
            shards.write_shard(
                path,
                f"s{k}",
                [f"s{k}_{i}" for i in indices],
                [int(i % 5) for i in indices],
                variants,
                ["a", "b", "c", "d", "e"],
                {},
                {},
            )
            paths.append(path)
        total = time.perf_counter() - start
        sizes = [p.stat().st_size for p in paths]
        print(
            f"write {len(paths)} shards, {args.samples} samples x 10: {total:.2f} s "
            f"(augmentation {augment_time:.2f} s, HDF5 {total - augment_time:.2f} s)"
        )
        print(
            f"shard sizes: total {sum(sizes) / 1e6:.1f} MB, "
            f"{sum(sizes) / (10 * args.samples) / 1e3:.1f} kB per row"
        )

        start = time.perf_counter()
        dataset = ShardDataset(paths, {f"s{k}" for k in range(args.subjects)})
        load = time.perf_counter() - start
        loader = torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=True)
        start = time.perf_counter()
        n = sum(len(batch["label"]) for batch in loader)
        read_rate = n / (time.perf_counter() - start)
        print(f"reader: load {load:.2f} s, iterate {read_rate:,.0f} samples/s")
    train_rate = train_step_rate(64, args.size)
    print(
        f"training step (3 ResNet-18 trunks, batch 64, {args.size}px): {train_rate:,.0f} samples/s"
    )
    ratio = read_rate / train_rate
    print(
        f"reader / training throughput: {ratio:.1f}x "
        f"{'PASS' if ratio >= 10 else 'FAIL'} (reading must never be the bottleneck: >= 10x)"
    )


if __name__ == "__main__":
    main()
