"""Leak-free LOSO training: who sees what, determinism, learning, checkpoints, edge cases."""

import json

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mer.learn import augment, head, inference, shards, split, train
from mer.learn.reader import ShardDataset

CLASSES = ["sideways", "down", "up"]
FAST = {
    "max_epochs": 6,
    "patience": 3,
    "head_epochs": 10,
    "dense_units": 32,
    "learning_rate": 0.02,
    "batch_size": 32,
}
# One epoch of the flow stream alone: enough to check who trains on what, a third of the cost of
# three streams. The three-stream path is checked by the checkpoint test and the slow suite.
QUICK = {
    **FAST,
    "max_epochs": 1,
    "head_epochs": 2,
    "batchnorm_rows": 64,
    "streams": ["flow_image"],
}
THREE_STREAMS = {**QUICK, "streams": list(train.MSCNN_STREAMS)}


def easy_variants(rng, label, size=32):
    """A clip whose motion direction is its class, whatever the flip: easy to learn."""
    yy, xx = np.mgrid[0:48, 0:48].astype(np.float32)
    bump = np.exp(-((xx - rng.uniform(18, 30)) ** 2 + (yy - rng.uniform(18, 30)) ** 2) / 80)
    angle = np.deg2rad(
        [0, 90, -90][label] + rng.choice([0, 180]) * (label == 0) + rng.normal(0, 10)
    )
    field = bump[..., None] * np.float32([np.cos(angle), np.sin(angle)])
    field += rng.normal(0, 0.03, field.shape).astype(np.float32)
    apex = rng.integers(80, 180, (48, 48), dtype=np.uint8)
    return augment.variants(field.astype(np.float32), apex, size)


def make_shards(folder, labels_by_subject, seed=0):
    rng = np.random.default_rng(seed)
    paths = []
    for subject, labels in labels_by_subject.items():
        path = folder / f"{subject}.h5"
        shards.write_shard(
            path,
            subject,
            [f"{subject}_c{i}" for i in range(len(labels))],
            labels,
            [easy_variants(rng, y) for y in labels],
            CLASSES,
            {},
            {},
        )
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def four_subjects(tmp_path_factory):
    labels = {
        "s1": [0, 1, 2, 0, 1, 2],
        "s2": [0, 1, 2, 0, 1, 2],
        "s3": [0, 1, 2, 1, 2, 0],
        "s4": [0, 1, 2, 2, 0, 1],
    }
    return make_shards(tmp_path_factory.mktemp("easy"), labels)


def train_every_fold(shard_paths, settings: dict) -> dict:
    config = train.TrainConfig.from_dict(settings)
    return {
        s: train.train_fold(shard_paths, s, config, seed=0, log=lambda _: None)
        for s in ("s1", "s2", "s3", "s4")
    }


@pytest.fixture(scope="module")
def folds(four_subjects):
    """Every fold trained long enough to learn (about a minute: for the slow suite)."""
    return train_every_fold(four_subjects, FAST)


@pytest.fixture(scope="module")
def quick_folds(four_subjects):
    """Every fold with one epoch: enough to check who trains on what."""
    return train_every_fold(four_subjects, QUICK)


def test_no_fold_trains_or_validates_on_its_held_out_subject(quick_folds):
    for held_out, result in quick_folds.items():
        fold = result.fold
        assert held_out not in fold["train_subjects"] + fold["validation_subjects"]
        assert not set(fold["train_subjects"]) & set(fold["validation_subjects"])
        assert set(fold["train_subjects"]) | set(fold["validation_subjects"]) == (
            {"s1", "s2", "s3", "s4"} - {held_out}
        )
        assert fold["oversampler_subjects"] == fold["train_subjects"]
        # Predictions: the held-out subject's originals, each once.
        assert set(result.predictions.subject) == {held_out}
        assert sorted(result.predictions["sample"]) == [f"{held_out}_c{i}" for i in range(6)]


def test_over_sampler_sees_training_features_only(four_subjects, monkeypatch):
    seen = {}
    original = head.oversample_features

    def spy(features, labels, method, seed):
        seen["rows"] = len(labels)
        return original(features, labels, method, seed)

    monkeypatch.setattr(head, "oversample_features", spy)
    result = train.train_fold(
        four_subjects, "s2", train.TrainConfig.from_dict(QUICK), 0, log=lambda _: None
    )
    train_rows = ShardDataset(four_subjects, result.fold["train_subjects"])
    assert seen["rows"] == len(train_rows) == result.fold["counts"]["train_rows"]


@pytest.mark.slow
def test_a_short_run_on_an_easy_setting_learns(folds):
    predictions = [r.predictions for r in folds.values()]
    correct = sum((p.true_label == p.predicted_label).sum() for p in predictions)
    total = sum(len(p) for p in predictions)
    assert correct / total >= 0.7  # chance is 1/3


def test_same_seed_gives_identical_predictions_and_another_seed_differs(four_subjects):
    config = train.TrainConfig.from_dict(QUICK)
    runs = [
        train.train_fold(four_subjects, "s1", config, seed=seed, log=lambda _: None)
        for seed in (0, 0, 1)
    ]
    probabilities = [c for c in runs[0].predictions if c.startswith("p_")]
    first, again, other = (r.predictions[probabilities].values for r in runs)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("oversampler", ["none", "smote"])
def test_a_variant_taking_the_trunk_equals_training_it_anew(four_subjects, tmp_path, oversampler):
    """The ablation's over-sampler variants differ only after the dense layer: refitting the
    head on a saved trunk (the CLI's --trunk) gives bit-identically what training gives."""
    base = train.train_fold(
        four_subjects, "s1", train.TrainConfig.from_dict(QUICK), 0, log=lambda _: None
    )
    torch.save(base.checkpoint, tmp_path / "checkpoint.pt")
    trunk = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    config = train.TrainConfig.from_dict({**QUICK, "oversampler": oversampler, "head_epochs": 3})
    anew = train.train_fold(four_subjects, "s1", config, 0, log=lambda _: None)
    reused = train.train_fold(four_subjects, "s1", config, 0, log=lambda _: None, trunk=trunk)
    pd.testing.assert_frame_equal(reused.predictions, anew.predictions, check_exact=True)
    pd.testing.assert_frame_equal(
        reused.history.drop(columns="seconds"), anew.history.drop(columns="seconds")
    )
    for name, weights in anew.checkpoint["state_dict"].items():
        assert torch.equal(reused.checkpoint["state_dict"][name], weights), name
    assert reused.fold == anew.fold


@pytest.mark.parametrize(
    "change, named",
    [
        ({"learning_rate": 0.05}, "trunk settings"),
        ({"oversampler": "input"}, "its own trunk"),
    ],
)
def test_a_trunk_of_other_settings_is_refused(four_subjects, change, named):
    base = train.train_fold(
        four_subjects, "s1", train.TrainConfig.from_dict(QUICK), 0, log=lambda _: None
    )
    config = train.TrainConfig.from_dict({**QUICK, **change})
    with pytest.raises(ValueError, match=named):
        train.train_fold(four_subjects, "s1", config, 0, log=lambda _: None, trunk=base.checkpoint)
    with pytest.raises(ValueError, match="held-out subject"):
        train.train_fold(
            four_subjects, "s2", train.TrainConfig.from_dict(QUICK), 0, log=lambda _: None,
            trunk=base.checkpoint,
        )  # fmt: skip


def test_checkpoint_reloads_safely_and_reproduces_its_predictions(four_subjects, tmp_path):
    config = train.TrainConfig.from_dict(THREE_STREAMS)
    result = train.train_fold(four_subjects, "s3", config, seed=0, log=lambda _: None)
    assert len(result.checkpoint["config"]["streams"]) == 3
    torch.save(result.checkpoint, tmp_path / "checkpoint.pt")
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert checkpoint["classes"] == CLASSES and checkpoint["held_out"] == "s3"
    model = train.load_model(checkpoint)
    test_set = ShardDataset(four_subjects, {"s3"}, augmentations={0})
    _, probabilities = inference.predict(model, test_set, torch.device("cpu"))
    stored = result.predictions[[f"p_{c}" for c in CLASSES]].values
    assert np.allclose(probabilities, stored, atol=1e-6)


def test_fixed_epochs_mode_runs_every_epoch_without_early_stopping(four_subjects):
    config = train.TrainConfig.from_dict(
        {**QUICK, "early_stopping": False, "max_epochs": 2, "oversampler": "none"}
    )
    result = train.train_fold(four_subjects, "s1", config, 0, log=lambda _: None)
    assert result.fold["epochs_run"] == 2 == result.fold["best_epoch"]
    assert result.fold["oversampler_subjects"] == []


def test_edge_cases_are_noted_not_crashed(tmp_path):
    # s3 alone has class 2, so the fold that holds it out trains without class 2; s4 has a
    # single clip; with two training subjects the validation subject cannot cover all classes.
    paths = make_shards(tmp_path, {"s1": [0, 1, 0, 1], "s2": [1, 0, 1], "s3": [2, 2, 0], "s4": [1]})
    config = train.TrainConfig.from_dict({**QUICK, "oversampler": "smote"})
    held_out_s3 = train.train_fold(paths, "s3", config, 0, log=lambda _: None)
    assert any("absent" in n and "up" in n for n in held_out_s3.notes)
    assert not (held_out_s3.predictions.predicted_label == "up").any()
    single = train.train_fold(paths, "s4", config, 0, log=lambda _: None)
    assert len(single.predictions) == 1
    assert any("stratified" in n for n in single.notes)


@pytest.mark.parametrize("method", ["random", "smote", "adasyn"])
def test_over_samplers_balance_and_shuffle(method):
    rng = np.random.default_rng(0)
    labels = np.array([0] * 30 + [1] * 8 + [2] * 4)
    features = rng.normal(size=(len(labels), 6)) + labels[:, None]
    balanced_x, balanced_y, _ = head.oversample_features(features, labels, method, seed=0)
    counts = np.bincount(balanced_y)
    assert counts.min() >= 0.8 * counts.max()
    assert not (np.diff(balanced_y[30:]) >= 0).all()  # the appended rows are shuffled


@settings(max_examples=40, deadline=None)
@given(n_subjects=st.integers(1, 12), fraction=st.floats(0.05, 0.6), seed=st.integers(0, 99))
def test_validation_split_is_whole_disjoint_subjects(n_subjects, fraction, seed):
    rng = np.random.default_rng(seed)
    subject_labels = {f"s{i}": rng.integers(0, 4, rng.integers(1, 6)) for i in range(n_subjects)}
    fit, val, note = split.split_validation(subject_labels, fraction, seed, 4)
    assert not set(fit) & set(val)
    assert set(fit) | set(val) == set(subject_labels)
    assert fit  # something is always left to train on
    assert (len(val) >= 1) == (n_subjects >= 2)


def test_fold_json_is_plain_json(quick_folds):
    json.dumps(quick_folds["s1"].fold)


def test_shards_of_different_preprocessing_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for subject, alpha in (("s1", 8), ("s2", 16)):
        path = tmp_path / f"{subject}.h5"
        variants = [easy_variants(rng, label) for label in (0, 1)]
        shards.write_shard(
            path, subject, ["a", "b"], [0, 1], variants, CLASSES, {"evm": {"alpha": alpha}}, {}
        )
        paths.append(path)
    config = train.TrainConfig.from_dict(QUICK)
    with pytest.raises(ValueError, match="different preprocessing parameters"):
        train.train_fold(paths, "s1", config, 0, log=lambda _: None)


@pytest.mark.parametrize("held_out", ["s1", "s2"])
def test_a_truncated_shard_stops_training_naming_the_file(tmp_path, held_out):
    """Whether the damaged shard is a training or the held-out subject's: the error names it
    and the fix, instead of h5py's bare OSError."""
    rng = np.random.default_rng(0)
    paths = []
    for subject in ("s1", "s2", "s3"):
        path = tmp_path / f"{subject}.h5"
        variants = [easy_variants(rng, label) for label in (0, 1)]
        shards.write_shard(path, subject, ["a", "b"], [0, 1], variants, CLASSES, {}, {})
        paths.append(path)
    paths[1].write_bytes(paths[1].read_bytes()[:2000])
    config = train.TrainConfig.from_dict(QUICK)
    with pytest.raises(shards.ShardError, match=r"s2\.h5.*delete it and rerun its shards job"):
        train.train_fold(paths, held_out, config, 0, log=lambda _: None)


def test_checkpoint_records_the_shards_preprocessing(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    params = {"evm": {"alpha": 8}, "flow": {"method": "deepflow", "params": {}}}
    for subject, labels in (("s1", [0, 1, 2]), ("s2", [2, 1, 0]), ("s3", [0, 1, 2])):
        path = tmp_path / f"{subject}.h5"
        variants = [easy_variants(rng, label) for label in labels]
        names = [f"{subject}_c{i}" for i in range(len(labels))]
        shards.write_shard(path, subject, names, labels, variants, CLASSES, params, {})
        paths.append(path)
    config = train.TrainConfig.from_dict(QUICK)
    result = train.train_fold(paths, "s1", config, 0, log=lambda _: None)
    torch.save(result.checkpoint, tmp_path / "checkpoint.pt")
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert checkpoint["preprocessing"]["params"] == params
    assert checkpoint["preprocessing"]["opencv_version"] == cv2.__version__


def test_a_fold_reports_where_its_time_went(quick_folds):
    result = quick_folds["s1"]
    assert list(result.seconds) == ["setup", "epochs", "head", "test"]
    assert all(seconds >= 0 for seconds in result.seconds.values())
    # The epochs phase holds every epoch the history times, and little else.
    epochs = result.history["seconds"].sum()
    assert epochs <= result.seconds["epochs"] < epochs + 1.0
