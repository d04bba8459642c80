"""A training job whose disk has less free space than the fold will write warns before it
trains, naming the folder, the space needed and the space free, and saying what to do."""

import os
import re

import pytest
import torch

from mer.cli import parse
from mer.learn import model, train
from mer.store import files

MIB = 2**20
ONE_STREAM = '{"streams": ["flow_image"], "dense_units": 16}'


class TrainingStarted(Exception):
    pass


def train_args(out_dir):
    return parse(
        ["train", str(out_dir), "--held-out", "s1", "--shards", "s1.h5", "s2.h5",
         "--config-json", ONE_STREAM]
    )  # fmt: skip


@pytest.fixture
def training_that_never_starts(monkeypatch):
    """cmd_train up to the training: what it printed before train_fold was called."""

    def train_fold(*args, **kwargs):
        raise TrainingStarted

    monkeypatch.setattr(train, "train_fold", train_fold)
    environment = dict(os.environ)  # cmd_train selects the compute mode in os.environ
    yield
    os.environ.clear()
    os.environ.update(environment)


def needed_mib(warning: str) -> float:
    return float(re.search(r" needs about ([\d.]+) MiB ", warning).group(1))


def test_a_training_job_warns_before_training_when_its_disk_is_short(
    tmp_path, monkeypatch, capsys, training_that_never_starts
):
    monkeypatch.setattr(files, "free_bytes", lambda folder: 3 * MIB)
    out_dir = tmp_path / "train/s1"
    args = train_args(out_dir)
    with pytest.raises(TrainingStarted):
        args.func(args)
    warning = capsys.readouterr().err.strip()
    assert warning.startswith(f"mer train: warning: {out_dir} needs about ")
    assert warning.endswith(
        "but its filesystem has 3.0 MiB free; free space now, or the write will fail (ENOSPC)"
    )
    # At least checkpoint.pt (one model) and resume.pt (weights, momenta, best state).
    one_model = model.state_bytes(["flow_image"], 16)
    assert needed_mib(warning) >= 4 * one_model / MIB


def test_a_training_job_with_enough_space_does_not_warn(
    tmp_path, monkeypatch, capsys, training_that_never_starts
):
    monkeypatch.setattr(files, "free_bytes", lambda folder: 2**40)
    args = train_args(tmp_path / "train/s1")
    with pytest.raises(TrainingStarted):
        args.func(args)
    assert "warning" not in capsys.readouterr().err


def test_a_resume_file_left_by_a_killed_job_is_not_counted_as_new_space(
    tmp_path, monkeypatch, capsys, training_that_never_starts
):
    monkeypatch.setattr(files, "free_bytes", lambda folder: 1 * MIB)
    fresh, killed = tmp_path / "fresh", tmp_path / "killed"
    killed.mkdir()
    with open(killed / "resume.pt", "wb") as resume:
        resume.truncate(10 * MIB)  # sparse: its size, not its blocks, is what is replaced
    needed = {}
    for out_dir in (fresh, killed):
        args = train_args(out_dir)
        with pytest.raises(TrainingStarted):
            args.func(args)
        needed[out_dir] = needed_mib(capsys.readouterr().err)
    assert needed[fresh] - needed[killed] == pytest.approx(10, abs=0.1)


def test_the_size_estimate_is_the_size_of_a_real_models_state():
    real = model.MSCNN(["flow_image", "apex_gray"], n_classes=5, dense_units=16).state_dict()
    assert model.state_bytes(["flow_image", "apex_gray"], 16) == sum(
        t.numel() * t.element_size() for t in real.values()
    )
    assert all(t.dtype in (torch.float32, torch.int64) for t in real.values())
