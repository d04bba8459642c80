"""Portable mode: a tiny fold trained by `mer train` gives the bits recorded for its CPU family,
whatever threads the job gets; the mode is selected before torch computes and recorded."""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import REPO
from mer import compute
from mer.learn import shards
from mer.learn.augment import AUGMENTATIONS

RECORDED = REPO / "tests" / "learn" / "portable_digests.json"
CLASSES = ["sideways", "down", "up"]
# Three streams, one epoch, a head refit: every kind of kernel a fold runs, in seconds.
TINY_FOLD = {
    "max_epochs": 1,
    "head_epochs": 2,
    "dense_units": 32,
    "batch_size": 32,
    "batchnorm_rows": 64,
}
# The default run's matrix shapes (batch 64, dense layer 256, BatchNorm rows 256) and two
# epochs: kernels can split their work by problem size, so the tiny fold alone cannot vouch
# for them.
DEFAULT_SHAPES_FOLD = {
    **TINY_FOLD,
    "max_epochs": 2,
    "early_stopping": False,
    "dense_units": 256,
    "batch_size": 64,
    "batchnorm_rows": 256,
}


def integer_variants(rng, label: int, size: int = 32) -> list[dict]:
    """Ten variants drawn as integers (the same bits on every machine: no OpenCV, no libm)."""
    variants = []
    for _ in AUGMENTATIONS:
        apex = rng.integers(0, 256, (size, size), dtype=np.uint8)
        mask = rng.integers(0, 2, (size, size)).astype(bool)
        flow_image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        flow_image[..., label] //= 4  # a class-dependent colour, something to learn
        variants.append(
            {
                "flow_uv": (rng.integers(-64, 64, (size, size, 2)) / 16).astype(np.float32),
                "flow_image": flow_image,
                "mask": mask,
                "apex_gray": apex,
                "masked_apex": np.where(mask, apex, 0).astype(np.uint8),
            }
        )
    return variants


@pytest.fixture(scope="module")
def tiny_shards(tmp_path_factory):
    folder = tmp_path_factory.mktemp("portable")
    rng = np.random.default_rng(0)
    paths = []
    for subject in ("s1", "s2", "s3", "s4"):
        labels = [0, 1, 2, 0, 1, 2]
        path = folder / f"{subject}.h5"
        samples = [f"{subject}_c{i}" for i in range(len(labels))]
        variants = [integer_variants(rng, label) for label in labels]
        shards.write_shard(path, subject, samples, labels, variants, CLASSES, {}, {})
        paths.append(path)
    return paths


def train_tiny_fold(
    shard_paths, out_dir, threads: int, mode: str = "portable", settings: dict = TINY_FOLD
) -> dict:
    """`mer train` in a fresh process (its own torch); the digests of its result."""
    env = {k: v for k, v in os.environ.items() if k not in compute.PORTABLE_ENV}
    env.pop(compute.MODE_VARIABLE, None)
    command = [
        sys.executable, "-m", "mer", "train", str(out_dir), "--held-out", "s1",
        "--shards", *map(str, shard_paths), "--config-json", json.dumps(settings),
        "--seed", "0", "--threads", str(threads), "--compute", mode,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    checkpoint = torch.load(out_dir / "checkpoint.pt", weights_only=True)
    weights = hashlib.sha256()
    for name, tensor in sorted(checkpoint["state_dict"].items()):
        weights.update(name.encode() + tensor.contiguous().numpy().tobytes())
    predictions = (out_dir / "predictions.csv").read_bytes()
    return {
        "weights": weights.hexdigest()[:16],
        "predictions": hashlib.sha256(predictions).hexdigest()[:16],
        "fold": json.loads((out_dir / "fold.json").read_text()),
        "log": done.stdout,
        "out_dir": out_dir,
    }


@pytest.fixture(scope="module")
def one_thread(tiny_shards, tmp_path_factory):
    return train_tiny_fold(tiny_shards, tmp_path_factory.mktemp("t1"), threads=1)


def recorded_digest(record: dict) -> dict | None:
    """The digests recorded for this fold's CPU family and library versions, if any."""
    recorded = json.loads(RECORDED.read_text())
    versions = f"torch {record['torch'].split('+')[0]}, oneDNN {record['onednn']}"
    return recorded.get(record["cpu_family"], {}).get(versions)


def test_a_tiny_fold_gives_the_bits_recorded_for_its_cpu_family(one_thread):
    record = one_thread["fold"]["compute"]
    assert record["mode"] == "portable" and record["precision"] == "fp32"
    expected = recorded_digest(record)
    if expected is None:
        pytest.skip(
            f"no digest recorded in {RECORDED.name} for {record['cpu_family']}, torch "
            f"{record['torch']}, oneDNN {record['onednn']} (this run: weights "
            f"{one_thread['weights']}, predictions {one_thread['predictions']})"
        )
    found = {k: one_thread[k] for k in ("weights", "predictions")}
    assert found == {k: expected[k] for k in found}, (
        f"portable mode computed other bits on {record['cpu_model']} than recorded for "
        f"{record['cpu_family']}: a change broke cross-machine identity (or, if intended, "
        f"record the new digests in {RECORDED})"
    )


def test_a_fold_of_the_default_runs_shapes_gives_the_bits_recorded(tiny_shards, tmp_path):
    fold = train_tiny_fold(tiny_shards, tmp_path, threads=1, settings=DEFAULT_SHAPES_FOLD)
    record = fold["fold"]["compute"]
    expected = (recorded_digest(record) or {}).get("default_shapes")
    found = {k: fold[k] for k in ("weights", "predictions")}
    if expected is None:
        pytest.skip(f"no default_shapes digest recorded for {record['cpu_family']}: {found}")
    assert found == expected, (
        f"portable mode computed other bits on {record['cpu_model']} than recorded for "
        f"{record['cpu_family']} at the default run's shapes (batch 64, dense 256)"
    )


def test_the_job_threads_do_not_change_the_bits(tiny_shards, one_thread, tmp_path):
    two_threads = train_tiny_fold(tiny_shards, tmp_path, threads=2)
    assert two_threads["fold"]["compute"]["threads"] == compute.PORTABLE_THREADS
    for key in ("weights", "predictions"):
        assert two_threads[key] == one_thread[key]


def test_the_fold_records_and_logs_what_computed_it(one_thread):
    record = one_thread["fold"]["compute"]
    for field in ("cpu_model", "cpu_family", "kernel_isa", "device", "threads", "torch", "mer"):
        assert record[field] not in (None, ""), field
    assert record["device"] == "cpu"
    if record["cpu_family"] == compute.PORTABLE_FAMILY:
        assert record["kernel_isa"] == "AVX2" and record["onednn_max_isa"] == "AVX2"
    assert "compute: portable mode (math threads 1)" in one_thread["log"]
    assert len(pd.read_csv(one_thread["out_dir"] / "predictions.csv")) == 6


def test_mer_train_logs_its_seconds_per_phase(one_thread):
    line = one_thread["log"].strip().splitlines()[-1]
    assert line.startswith("seconds: ")
    phases = dict(item.split(" ") for item in line.removeprefix("seconds: ").split(", "))
    assert list(phases) == ["imports", "setup", "epochs", "head", "test", "writing"]
    assert all(float(value) >= 0 for value in phases.values())
