"""`mer predict`: a clip through its checkpoint's recorded preprocessing reproduces the
workflow's prediction; checkpoints and clips that cannot be predicted are refused clearly."""

import json
import sys

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO
from mer import cli
from mer.learn import augment, shards
from mer.learn.reader import ShardDataset, variant_inputs

CLASSES = ["others", "happiness"]


def default_preprocessing() -> dict:
    """The preprocessing record of a checkpoint trained with the default config."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    crop = {"enabled": False, "size": 128, "margin": 0.15}
    return {
        "params": {
            "data_key": "test",
            "evm": {**config["evm"], "size": 32, "crop": crop},
            "flow": {"method": "farneback", "params": {}},
            "masks": config["masks"],
            "shards": config["shards"],
        },
        "mer_version": "",
        "opencv_version": "",
    }


def write_checkpoint(path, preprocessing=None, **changes) -> str:
    """A checkpoint of an untrained tiny model, with the given preprocessing record."""
    from mer.learn.model import MSCNN

    model = MSCNN(n_classes=len(CLASSES), dense_units=8)
    checkpoint = {
        "state_dict": model.state_dict(),
        "config": {"streams": list(model.streams), "dense_units": 8},
        "classes": CLASSES,
        **({"preprocessing": preprocessing} if preprocessing is not None else {}),
        **changes,
    }
    torch.save(checkpoint, path)
    return str(path)


def write_clip(folder, n_frames=8, size=48, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.integers(0, 255, (size, size), dtype=np.uint8), (7, 7), 2)
    for number in range(1, n_frames + 1):
        frame = np.roll(base, number // 3, axis=1)
        cv2.imwrite(str(folder / f"img{number}.png"), frame)
    return folder


def run_predict(capsys, *args):
    status = cli.main(["predict", *map(str, args)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_a_checkpoint_without_preprocessing_parameters_is_refused(tmp_path, capsys):
    model = write_checkpoint(tmp_path / "old.pt")  # as saved before `mer predict` existed
    clip = write_clip(tmp_path / "clip")
    status, out, err = run_predict(capsys, clip, "--model", model, "--fps", 200, "--apex", 4)
    assert status != 0 and out == ""
    assert "old.pt records no preprocessing parameters" in err and "retrain" in err


def test_a_checkpoint_lacking_one_parameter_names_it(tmp_path, capsys):
    preprocessing = default_preprocessing()
    del preprocessing["params"]["masks"]["threshold"]
    model = write_checkpoint(tmp_path / "model.pt", preprocessing)
    clip = write_clip(tmp_path / "clip")
    status, _, err = run_predict(capsys, clip, "--model", model, "--fps", 200, "--apex", 4)
    assert status != 0 and "masks.threshold" in err


def test_a_flow_method_missing_from_this_opencv_is_refused(tmp_path, capsys, monkeypatch):
    preprocessing = default_preprocessing()
    preprocessing["params"]["flow"]["method"] = "deepflow"
    model = write_checkpoint(tmp_path / "model.pt", preprocessing)
    clip = write_clip(tmp_path / "clip")
    monkeypatch.delattr(cv2, "optflow", raising=False)  # an OpenCV build without contrib
    status, _, err = run_predict(capsys, clip, "--model", model, "--fps", 200, "--apex", 4)
    assert status != 0 and "'deepflow'" in err and "opencv-contrib-python" in err


def test_a_corrupt_frame_is_named(tmp_path, capsys):
    model = write_checkpoint(tmp_path / "model.pt", default_preprocessing())
    clip = write_clip(tmp_path / "clip")
    (clip / "img5.png").write_bytes(b"\x89PNG not really")
    status, _, err = run_predict(capsys, clip, "--model", model, "--fps", 200, "--apex", 4)
    assert status != 0 and "img5.png" in err and "cannot be decoded" in err


def test_a_clip_too_short_to_magnify_is_refused(tmp_path, capsys):
    model = write_checkpoint(tmp_path / "model.pt", default_preprocessing())
    clip = write_clip(tmp_path / "clip", n_frames=3)
    status, _, err = run_predict(capsys, clip, "--model", model, "--fps", 200, "--apex", 2)
    assert status != 0 and "holds 3 frames" in err and "at least 4" in err


def test_an_apex_outside_the_clip_is_refused(tmp_path, capsys):
    model = write_checkpoint(tmp_path / "model.pt", default_preprocessing())
    clip = write_clip(tmp_path / "clip")
    status, _, err = run_predict(
        capsys, clip, "--model", model, "--fps", 200, "--offset", 6, "--apex", 7
    )
    assert status != 0 and "apex 7 lies outside onset..offset 1..6" in err


def test_without_apex_and_without_spotting_it_asks_for_apex(tmp_path, capsys, monkeypatch):
    model = write_checkpoint(tmp_path / "model.pt", default_preprocessing())
    clip = write_clip(tmp_path / "clip")
    monkeypatch.setitem(sys.modules, "mer.data.spotting", None)  # import fails: not installed
    status, _, err = run_predict(capsys, clip, "--model", model, "--fps", 200)
    assert status != 0 and "--apex" in err and "mer.data.spotting" in err


def test_a_valid_checkpoint_prints_a_class_and_probabilities_that_sum_to_one(tmp_path, capsys):
    # 16 frames at 60 fps: FFT bins 3.75 Hz apart, some inside the 0.5..20 Hz band.
    model = write_checkpoint(tmp_path / "model.pt", default_preprocessing())
    clip = write_clip(tmp_path / "clip", n_frames=16)
    status, out, _ = run_predict(capsys, clip, "--model", model, "--fps", 60, "--apex", 6, "--json")
    assert status == 0
    result = json.loads(out)
    assert (result["onset"], result["apex"], result["offset"]) == (1, 6, 16)
    assert result["predicted_label"] in CLASSES and not result["apex_spotted"]
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    status, out, _ = run_predict(capsys, clip, "--model", model, "--fps", 60, "--apex", 6)
    assert status == 0 and f"predicted {result['predicted_label']}" in out


def test_network_input_of_a_variant_equals_the_shard_reader_row(tmp_path):
    rng = np.random.default_rng(1)
    field = rng.normal(0, 0.5, (40, 40, 2)).astype(np.float32)
    apex = rng.integers(0, 255, (40, 40), dtype=np.uint8)
    variants = augment.variants(field, apex, 32)
    path = tmp_path / "s1.h5"
    shards.write_shard(path, "s1", ["s1_c0"], [0], [variants], CLASSES, {}, {})
    row = ShardDataset([path], {"s1"}, augmentations={0})[0]
    inputs = variant_inputs(augment.variant(field, apex, 32))
    for stream, tensor in inputs.items():
        assert tensor.shape == (1,) + row[stream].shape
        assert torch.equal(tensor[0], row[stream]), stream


# ---- end to end: the workflow's own prediction is reproduced -------------------------------


@pytest.fixture(scope="module")
def trained_fold(completed_tiny_run):
    """The checkpoint and predictions of one mscnn fold of the shared tiny workflow run."""
    workdir, _ = completed_tiny_run
    fold_dir = sorted(workdir.glob("results/synthetic/train/mscnn-*/seed0/*/"))[0]
    samples = pd.read_csv(
        workdir / "results/synthetic/samples.tsv", sep="\t", dtype={"subject": str}
    )
    predictions = pd.read_csv(fold_dir / "predictions.csv", dtype={"subject": str})
    return workdir, fold_dir, samples.set_index("sample"), predictions


def predict_sample(capsys, workdir, fold_dir, row, frames=("onset", "apex", "offset")):
    """`mer predict --json` on a samples.tsv row's clip, given these of its frame numbers."""
    numbers = [arg for name in frames for arg in (f"--{name}", row[name])]
    model = fold_dir / "checkpoint.pt"
    clip = workdir / row["frames_dir"]
    return run_predict(capsys, clip, "--model", model, "--fps", row["fps"], *numbers, "--json")


@pytest.mark.slow
def test_predict_reproduces_the_workflow_prediction_of_a_held_out_clip(trained_fold, capsys):
    workdir, fold_dir, samples, predictions = trained_fold
    checkpoint = torch.load(fold_dir / "checkpoint.pt", weights_only=True)
    assert checkpoint["preprocessing"]["params"]["flow"]["method"] == "deepflow"
    for _, expected in predictions.iterrows():
        row = samples.loc[expected["sample"]]
        status, out, err = predict_sample(capsys, workdir, fold_dir, row)
        assert status == 0, err
        result = json.loads(out)
        assert result["predicted_label"] == expected["predicted_label"]
        for name in checkpoint["classes"]:
            assert result["probabilities"][name] == pytest.approx(expected[f"p_{name}"], abs=1e-5)


@pytest.mark.slow
def test_checkpoint_records_its_shards_preprocessing(trained_fold):
    import h5py

    workdir, fold_dir, _, _ = trained_fold
    checkpoint = torch.load(fold_dir / "checkpoint.pt", weights_only=True)
    shard = sorted(workdir.glob("results/synthetic/shards/*/*.h5"))[0]
    with h5py.File(shard, "r") as handle:
        recorded = json.loads(handle.attrs["params"])
        opencv_version = handle.attrs["opencv_version"]
    assert checkpoint["preprocessing"]["params"] == recorded
    assert checkpoint["preprocessing"]["opencv_version"] == opencv_version == cv2.__version__


@pytest.mark.slow
def test_predict_spots_the_apex_when_none_is_given(trained_fold, capsys):
    pytest.importorskip("mer.data.spotting")
    workdir, fold_dir, samples, predictions = trained_fold
    row = samples.loc[predictions["sample"].iloc[0]]
    status, out, err = predict_sample(capsys, workdir, fold_dir, row, ("onset", "offset"))
    assert status == 0, err
    result = json.loads(out)
    assert result["apex_spotted"] and row["onset"] <= result["apex"] <= row["offset"]
    assert result["predicted_label"] in checkpoint_classes(fold_dir)


def checkpoint_classes(fold_dir) -> list[str]:
    return torch.load(fold_dir / "checkpoint.pt", weights_only=True)["classes"]
