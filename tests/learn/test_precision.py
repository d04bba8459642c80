"""The training precision: what each setting means on this machine, that the training steps
really compute in it, and that fp32 stays available and learns as bf16 does."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_train import FAST, QUICK, four_subjects, train_every_fold  # noqa: F401 (fixture)

from conftest import REPO
from mer import compute
from mer.learn import precision, train


def test_fp32_never_autocasts_and_keeps_the_default_memory_format():
    chosen = precision.resolve("fp32", torch.device("cpu"), 64)
    assert (chosen.name, chosen.dtype, chosen.channels_last) == ("fp32", None, False)
    with chosen.autocast():
        assert not torch.is_autocast_enabled("cpu")


def test_auto_is_bf16_only_in_fast_mode_with_native_bf16_and_inputs_of_64_px(monkeypatch):
    monkeypatch.setenv(compute.MODE_VARIABLE, "fast")
    monkeypatch.setattr(precision, "native_bf16", lambda: False)
    assert precision.resolve("auto", torch.device("cpu"), 64).name == "fp32"
    monkeypatch.setattr(precision, "native_bf16", lambda: True)
    assert precision.resolve("auto", torch.device("cpu"), 32).name == "fp32"  # slower there
    chosen = precision.resolve("auto", torch.device("cpu"), 64)
    assert (chosen.dtype, chosen.channels_last) == (torch.bfloat16, True)
    assert not chosen.scales_loss  # bf16 has fp32's exponent range: no GradScaler


def test_portable_mode_computes_in_fp32_on_the_cpu_and_refuses_bf16(monkeypatch):
    monkeypatch.setenv(compute.MODE_VARIABLE, "portable")
    monkeypatch.setattr(precision, "native_bf16", lambda: True)
    assert precision.resolve("auto", torch.device("cpu"), 64).name == "fp32"
    with pytest.raises(ValueError, match="needs compute mode fast"):
        precision.resolve("bf16", torch.device("cpu"), 64)


def test_an_unknown_precision_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="precision one of"):
        train.TrainConfig.from_dict({"precision": "fp8"})


@pytest.mark.parametrize("setting, dtype", [("bf16", torch.bfloat16), ("fp32", torch.float32)])
def test_training_steps_compute_in_the_chosen_precision(four_subjects, setting, dtype, monkeypatch):  # noqa: F811, E501
    monkeypatch.setenv(compute.MODE_VARIABLE, "fast")  # bf16 on the CPU is fast mode's
    seen = set()

    def record(module, inputs, output):
        if module.training and torch.is_grad_enabled():  # training steps, not evaluation
            seen.add((output.dtype, output.is_contiguous(memory_format=torch.channels_last)))

    original = train.MSCNN.__init__

    def hooked(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.trunks["flow_image"].layer1.register_forward_hook(record)

    config = train.TrainConfig.from_dict({**QUICK, "precision": setting})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train.MSCNN, "__init__", hooked)
        result = train.train_fold(four_subjects, "s1", config, seed=0, log=lambda _: None)
    assert seen == {(dtype, setting == "bf16")}
    assert result.fold["precision"] == setting


@pytest.mark.slow
def test_fp32_learns_the_easy_setting_as_the_default_does(four_subjects):  # noqa: F811
    folds = train_every_fold(four_subjects, {**FAST, "precision": "fp32"})
    predictions = [r.predictions for r in folds.values()]
    correct = sum((p.true_label == p.predicted_label).sum() for p in predictions)
    assert correct / sum(len(p) for p in predictions) >= 0.7  # chance is 1/3


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks what a machine without CUDA sees")
def test_the_gpu_check_stops_at_once_on_a_machine_without_cuda():
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_check.sh")], capture_output=True, text=True, env=env
    )
    assert done.returncode != 0
    assert "needs a CUDA device" in done.stderr
