"""A diverging fold (a learning rate far too high) stops with an error naming the fold, the
epoch and the setting, not a NaN metric, and the rerun with a sane setting gives what an
undisturbed run gives; NaN never reaches an average; a GPU out of memory names batch_size and
shards.input_size."""

import json
import math
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch
from fault_writers import subject_shards

from conftest import REPO
from mer.evaluation import evaluate, metrics
from mer.learn import faults, train

# One epoch of one stream: seconds per fold.
QUICK = {"max_epochs": 1, "head_epochs": 2, "batchnorm_rows": 32, "dense_units": 16,
         "batch_size": 16, "streams": ["flow_image"]}  # fmt: skip
DIVERGING = {**QUICK, "learning_rate": 1e30}


@pytest.fixture(scope="module")
def shards_of_three(tmp_path_factory):
    return subject_shards(tmp_path_factory.mktemp("shards"))


def test_a_diverging_fold_stops_naming_fold_epoch_and_learning_rate(shards_of_three):
    config = train.TrainConfig.from_dict(DIVERGING)
    with pytest.raises(faults.FoldError) as raised:
        train.train_fold(shards_of_three, "s1", config, 0, log=lambda _: None)
    message = str(raised.value)
    assert message.startswith("fold of held-out subject s1: train_loss ")
    assert (
        " at epoch 1; the training diverged with train.learning_rate 1e+30 (batch_size 16, "
        in message
    )
    assert message.endswith(
        "lower train.learning_rate in config.yaml (or try precision fp32) and rerun; no "
        "predictions were written"
    )


def test_a_finite_epoch_passes_and_nan_or_inf_in_any_loss_stops(shards_of_three):
    config = train.TrainConfig.from_dict(QUICK)
    faults.check_finite({"train_loss": 1.1, "val_loss": 0.9, "val_f1": 0.3}, 2, "s2", config)
    for bad in (math.nan, math.inf):
        with pytest.raises(faults.FoldError, match=rf"s2: val_loss {bad} at epoch 3;"):
            faults.check_finite({"train_loss": 1.0, "val_loss": bad}, 3, "s2", config)


def test_a_gpu_out_of_memory_names_batch_size_and_input_size(shards_of_three, monkeypatch):
    def out_of_memory(*args):
        raise torch.OutOfMemoryError(
            "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 11.76 GiB total capacity)\n"
            "See documentation for Memory Management"
        )

    monkeypatch.setattr(train, "_train_epoch", out_of_memory)
    config = train.TrainConfig.from_dict(QUICK)
    with pytest.raises(faults.FoldError) as raised:
        train.train_fold(shards_of_three, "s3", config, 0, log=lambda _: None)
    assert str(raised.value) == (
        "fold of held-out subject s3: the GPU ran out of memory at epoch 1 (CUDA out of memory. "
        "Tried to allocate 2.00 GiB (GPU 0; 11.76 GiB total capacity)); lower train.batch_size "
        "(now 16) or shards.input_size in config.yaml, or run one fold per GPU (SLURM "
        "profile), and rerun"
    )


def test_a_nan_score_is_never_averaged_over_seeds():
    per_seed = {0: {"accuracy": 0.5}, 1: {"accuracy": math.nan}, 2: {"accuracy": 0.7}}
    with pytest.raises(ValueError, match=r"^accuracy of seed\(s\) \[1\] is nan, not averaged"):
        metrics.across_seeds(per_seed, ["accuracy"])
    assert metrics.across_seeds({0: {"accuracy": 0.5}}, ["accuracy"])["accuracy"]["mean"] == 0.5


def test_predictions_with_nan_probabilities_are_refused_naming_the_fold(tmp_path):
    path = tmp_path / "s1/predictions.csv"
    path.parent.mkdir()
    row = {"sample": "s1_c0", "subject": "s1", "true_label": "a", "predicted_label": "a",
           "p_a": math.nan, "p_b": 0.5}  # fmt: skip
    pd.DataFrame([row]).to_csv(path, index=False)
    with pytest.raises(ValueError) as raised:
        evaluate._read_fold(path, "s1", ["a", "b"])
    assert str(raised.value) == (
        f"{path} has NaN or infinite class probabilities: the fold of subject 's1' diverged; "
        "rerun it with a lower train.learning_rate (its log names the epoch)"
    )


def mer_train(out_dir, shard_paths, settings: dict) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    command = [sys.executable, "-m", "mer", "train", str(out_dir), "--held-out", "s1",
               "--shards", *map(str, shard_paths), "--config-json", json.dumps(settings),
               "--resume-every", "0"]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=env)


@pytest.mark.slow
def test_after_a_diverged_fold_the_sane_rerun_matches_an_undisturbed_one(shards_of_three, tmp_path):
    diverged = mer_train(tmp_path / "fold", shards_of_three, DIVERGING)
    assert diverged.returncode == 2
    assert "mer train: error: fold of held-out subject s1: train_loss" in diverged.stderr
    assert not (tmp_path / "fold/predictions.csv").exists()
    assert not (tmp_path / "fold/checkpoint.pt").exists()
    assert mer_train(tmp_path / "fold", shards_of_three, QUICK).returncode == 0
    assert mer_train(tmp_path / "undisturbed", shards_of_three, QUICK).returncode == 0
    for name in ("predictions.csv", "history.csv"):
        rerun = pd.read_csv(tmp_path / "fold" / name).drop(columns="seconds", errors="ignore")
        undisturbed = pd.read_csv(tmp_path / "undisturbed" / name).drop(
            columns="seconds", errors="ignore"
        )
        pd.testing.assert_frame_equal(rerun, undisturbed, check_exact=True)
