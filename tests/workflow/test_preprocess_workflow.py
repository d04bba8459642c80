"""The preprocessing DAG: one artifact per sample per stage under parameter-keyed paths.
What a parameter change reruns is checked in tests/test_incremental.py."""

import cv2
import numpy as np
import pytest

from mer.data.samples import read_samples
from mer.store import files

pytestmark = pytest.mark.slow


def test_every_sample_gets_masks_and_a_preview(completed_tiny_run):
    workdir, config = completed_tiny_run
    mask_files = list(workdir.glob("results/synthetic/masks/*/*.npz"))
    samples = (workdir / "results/synthetic/samples.tsv").read_text().splitlines()[1:]
    assert len(mask_files) == len(samples) > 0
    artifact = files.load_npz(mask_files[0], "flow_image", "mask", "apex_gray", "masked_apex")
    # Each clip is processed at its own frame size (the synthetic sizes vary per clip).
    row = read_samples(workdir / "results/synthetic/samples.tsv").set_index("sample")
    frames_dir = row.loc[mask_files[0].stem, "frames_dir"]
    frame = cv2.imread(str(next((workdir / frames_dir).iterdir())), cv2.IMREAD_GRAYSCALE)
    assert artifact["flow_image"].shape == (*frame.shape, 3) == (*artifact["apex_gray"].shape, 3)
    assert (artifact["masked_apex"][~artifact["mask"]] == 0).all()
    assert np.array_equal(
        artifact["masked_apex"][artifact["mask"]], artifact["apex_gray"][artifact["mask"]]
    )
    assert len(list(workdir.glob("results/synthetic/masks/*/preview/*.png"))) == len(samples)
    assert list(workdir.glob("results/synthetic/masks/*/contact_sheet.png"))


def test_one_shard_per_subject_with_ten_rows_per_sample(completed_tiny_run):
    from mer.data import samples
    from mer.learn import shards

    workdir, _ = completed_tiny_run
    table = samples.read_samples(workdir / "results/synthetic/samples.tsv")
    paths = sorted(workdir.glob("results/synthetic/shards/*/*.h5"))
    assert [p.stem for p in paths] == sorted(table.subject.unique())
    for path in paths:
        data = shards.read_shard(path)
        subject_samples = table[table.subject == path.stem]
        assert len(data["label"]) == 10 * len(subject_samples)
        assert set(data["sample"]) == set(subject_samples["sample"])


def test_every_fold_of_every_experiment_writes_its_outputs(completed_tiny_run):
    import json

    import pandas as pd
    import torch

    workdir, config = completed_tiny_run
    folds = sorted(workdir.glob("results/synthetic/train/*/seed0/*"))
    subjects = {"sub01", "sub02"}
    networks = [e for e in config["experiments"].values() if e.get("method") != "lbptop"]
    assert len(folds) == len(networks) * len(subjects)
    for fold_dir in folds:
        predictions = pd.read_csv(fold_dir / "predictions.csv")
        assert set(predictions.subject) == {fold_dir.name}
        fold = json.loads((fold_dir / "fold.json").read_text())
        assert fold_dir.name not in fold["train_subjects"] + fold["validation_subjects"]
        checkpoint = torch.load(fold_dir / "checkpoint.pt", weights_only=True)
        assert checkpoint["held_out"] == fold_dir.name
        assert len(pd.read_csv(fold_dir / "history.csv")) == fold["epochs_run"]
        assert (
            "epoch 1 "
            in (
                workdir
                / "results/synthetic/logs/train"
                / fold_dir.parent.parent.name
                / "seed0"
                / f"{fold_dir.name}.log"
            ).read_text()
        )
