from __future__ import annotations

import time

import numpy as np
import pytest
import sklearn.preprocessing
import sklearn.svm
from skimage.feature import local_binary_pattern

from mer.methods.lbptop import PLANES, lbp_bins, lbptop_features, lbptop_length
from mer.methods.svm import loso_svm, svm_fold

# mer.learn.train writes these columns (then p_<class> per class, in class order).
PREDICTION_COLUMNS = ["sample", "subject", "true_label", "predicted_label"]
FOLD_KEYS = {
    "held_out",
    "seed",
    "train_subjects",
    "validation_subjects",
    "test_subjects",
    "counts",
    "notes",
}


def noise_clip(seed: int, shape=(9, 40, 44), low=0, high=200) -> np.ndarray:
    return np.random.default_rng(seed).integers(low, high, shape).astype(np.uint8)


def per_plane(features: np.ndarray, blocks=(5, 5), points=8) -> np.ndarray:
    """(blocks, planes, bins) view of a feature vector, as documented in mer.methods.lbptop."""
    return features.reshape(blocks[0] * blocks[1], len(PLANES), lbp_bins(points))


def flat_code(points: int = 8) -> int:
    """The code of a pixel whose neighbours all equal it."""
    return int(local_binary_pattern(np.full((5, 5), 7, np.uint8), points, 1, "nri_uniform")[2, 2])


@pytest.mark.parametrize(
    ("blocks", "points", "expected"),
    [((5, 5), 8, 25 * 3 * 59), ((1, 1), 8, 3 * 59), ((2, 3), 8, 6 * 3 * 59), ((4, 4), 4, 16 * 45)],
)
def test_feature_length_is_blocks_times_three_planes_times_bins(blocks, points, expected):
    features = lbptop_features(noise_clip(0), blocks=blocks, points=points)
    assert features.shape == (expected,) == (lbptop_length(blocks, points),)
    assert features.dtype == np.float32
    # Every (block, plane) histogram is normalised.
    sums = features.reshape(-1, lbp_bins(points)).sum(axis=1)
    np.testing.assert_allclose(sums, 1.0, atol=1e-5)


@pytest.mark.parametrize("offset", [-30, 1, 30])
def test_a_constant_brightness_offset_leaves_the_features_unchanged(offset):
    # Gray levels 30..225 in steps of 5 (many ties); -30 puts zeros into the clip, which would
    # expose skimage's zero padding at the borders if the borders were counted.
    clip = noise_clip(1, low=0, high=40).astype(np.int16) * 5 + 30
    shifted = clip + offset
    assert shifted.min() >= 0 and shifted.max() <= 255  # no saturation
    np.testing.assert_array_equal(
        lbptop_features(clip.astype(np.uint8)), lbptop_features(shifted.astype(np.uint8))
    )


def test_a_clip_varying_along_one_axis_leaves_the_plane_across_it_flat():
    """Vertical stripes (vary with x only): every YT code is flat, XY and XT are not.
    Horizontal stripes (y only): XT flat. Flicker (t only): XY flat. This pins which axes each
    plane's slices run along."""
    t, y, x = np.meshgrid(np.arange(9), np.arange(30), np.arange(30), indexing="ij")
    varying_along = {
        "x": (x % 4) * 40 + 20,
        "y": (y % 3) * 50 + 20,
        "t": (t % 3) * 50 + 20,
    }
    flat_plane = {"x": "YT", "y": "XT", "t": "XY"}
    for axis, clip in varying_along.items():
        histograms = per_plane(lbptop_features(clip.astype(np.uint8)))
        for index, plane in enumerate(PLANES):
            share_flat = histograms[:, index, flat_code()]
            if plane == flat_plane[axis]:
                np.testing.assert_allclose(share_flat, 1.0, err_msg=f"{axis}: {plane}")
            else:
                assert share_flat.max() < 0.9, f"{axis}: {plane} should see the texture"


def test_a_static_clip_has_the_same_features_whatever_its_length():
    frame = noise_clip(2, shape=(1, 30, 30))
    short, long = np.repeat(frame, 3, axis=0), np.repeat(frame, 12, axis=0)
    np.testing.assert_allclose(lbptop_features(short), lbptop_features(long), atol=1e-7)


def test_different_textures_give_different_features():
    _, y, x = np.meshgrid(np.arange(9), np.arange(40), np.arange(44), indexing="ij")
    textures = {
        "noise": noise_clip(3),
        "stripes": ((x % 5) * 40).astype(np.uint8),
        "checks": (((x // 2 + y // 2) % 2) * 200).astype(np.uint8),
    }
    features = {name: lbptop_features(clip) for name, clip in textures.items()}
    names = list(features)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            distance = np.abs(features[first] - features[second]).sum()
            assert distance > 10, f"{first} vs {second}: L1 distance {distance}"


def test_a_change_inside_one_block_changes_only_that_blocks_histograms():
    clip = noise_clip(4, shape=(9, 50, 50))
    changed = clip.copy()
    # Interior rows/columns 0..47 in 5x5 blocks of ~9.6 px; this patch sits well inside block
    # (1, 2) (pixels 12..16 of the volume -> interior 11..15 plus the 1-px LBP reach).
    changed[:, 13:17, 23:27] = noise_clip(5, shape=(9, 4, 4))
    difference = np.abs(per_plane(lbptop_features(clip)) - per_plane(lbptop_features(changed)))
    changed_blocks = np.flatnonzero(difference.sum(axis=(1, 2)) > 0)
    assert changed_blocks.tolist() == [1 * 5 + 2]


def test_too_small_clips_and_float_clips_are_refused():
    with pytest.raises(ValueError, match="frames"):
        lbptop_features(noise_clip(0, shape=(2, 20, 20)))
    with pytest.raises(ValueError, match="blocks"):
        lbptop_features(noise_clip(0, shape=(5, 6, 6)), blocks=(5, 5))
    with pytest.raises(ValueError, match="integer"):
        lbptop_features(noise_clip(0).astype(np.float32))


def test_a_forty_frame_128_pixel_clip_takes_well_under_a_second():
    clip = noise_clip(6, shape=(40, 128, 128), high=256)
    lbptop_features(clip[:5])  # warm up imports
    start = time.perf_counter()
    lbptop_features(clip)
    # ~0.4 s on the 2-core dev machine; the bound leaves room for a busy machine.
    assert time.perf_counter() - start < 2.0


# --- LOSO linear SVM -----------------------------------------------------------------------

CLASSES = ["others", "disgust", "happiness"]


def toy_problem(seed: int = 0, subjects: int = 5, per_class: int = 4, dimensions: int = 30):
    """Three well-separated Gaussian classes, every subject holding every class."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (len(CLASSES), dimensions))
    rows = [
        (f"s{s:02d}", label, centres[label] + rng.normal(0, 1, dimensions))
        for s in range(subjects)
        for label in range(len(CLASSES))
        for _ in range(per_class)
    ]
    subject_ids = np.array([r[0] for r in rows])
    labels = np.array([r[1] for r in rows])
    features = np.stack([r[2] for r in rows])
    samples = np.array([f"clip{i:03d}" for i in range(len(rows))])
    return features, labels, subject_ids, samples


def test_loso_svm_never_fits_on_the_held_out_subject(monkeypatch):
    features, labels, subjects, samples = toy_problem()
    features[:, 0] = [int(s[1:]) for s in subjects]  # column 0 tells the subject
    fitted_rows = []

    class SpyScaler(sklearn.preprocessing.StandardScaler):
        def fit(self, X, y=None, sample_weight=None):
            fitted_rows.append(("scaler", np.asarray(X)[:, 0].copy()))
            return super().fit(X, y, sample_weight)

    class SpySVC(sklearn.svm.LinearSVC):
        def fit(self, X, y, sample_weight=None):
            fitted_rows.append(("svm", len(X)))
            return super().fit(X, y, sample_weight)

    # svm_fold imports these when called, so patching the sklearn modules reaches it.
    monkeypatch.setattr(sklearn.preprocessing, "StandardScaler", SpyScaler)
    monkeypatch.setattr(sklearn.svm, "LinearSVC", SpySVC)
    for held_out in sorted(set(subjects)):
        fitted_rows.clear()
        predictions, fold = svm_fold(features, labels, subjects, samples, CLASSES, held_out, seed=0)
        (_, scaler_subjects), (_, svm_rows) = fitted_rows
        assert int(held_out[1:]) not in set(scaler_subjects.tolist())
        assert len(scaler_subjects) == svm_rows == (subjects != held_out).sum()
        assert set(predictions["subject"]) == {held_out}
        assert held_out not in fold["train_subjects"] and fold["test_subjects"] == [held_out]


def test_loso_svm_learns_an_easy_separable_problem():
    features, labels, subjects, samples = toy_problem()
    folds = loso_svm(features, labels, subjects, CLASSES, seed=0, samples=samples)
    assert sorted(folds) == sorted(set(subjects))
    pooled = np.concatenate(
        [(f.true_label == f.predicted_label).to_numpy() for f in folds.values()]
    )
    assert len(pooled) == len(labels)
    assert pooled.mean() > 0.9  # chance: 1/3


def test_predictions_have_train_py_columns_and_consistent_probabilities():
    features, labels, subjects, samples = toy_problem(subjects=3)
    predictions, fold = svm_fold(features, labels, subjects, samples, CLASSES, "s01", seed=1)
    assert list(predictions.columns) == PREDICTION_COLUMNS + [f"p_{c}" for c in CLASSES]
    probabilities = predictions[[f"p_{c}" for c in CLASSES]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert [CLASSES[i] for i in probabilities.argmax(1)] == predictions.predicted_label.tolist()
    assert predictions["sample"].tolist() == samples[subjects == "s01"].tolist()
    assert FOLD_KEYS <= set(fold) and fold["validation_subjects"] == []
    assert fold["counts"]["train_clips"] == (subjects != "s01").sum()


def test_two_training_classes_and_an_absent_class_are_handled():
    features, labels, subjects, samples = toy_problem(subjects=3)
    keep = labels != 2
    predictions, fold = svm_fold(
        features[keep], labels[keep], subjects[keep], samples[keep], CLASSES, "s00", seed=0
    )
    assert (predictions["p_happiness"] == 0).all()
    assert (predictions.true_label == predictions.predicted_label).mean() > 0.9
    assert any("happiness" in note for note in fold["notes"])


def test_a_single_training_class_predicts_that_class_with_a_note():
    features, labels, subjects, samples = toy_problem(subjects=2)
    # Subject s01 keeps only 'disgust': holding out s00 leaves one training class.
    keep = (subjects == "s00") | (labels == 1)
    predictions, fold = svm_fold(
        features[keep], labels[keep], subjects[keep], samples[keep], CLASSES, "s00", seed=0
    )
    assert set(predictions.predicted_label) == {"disgust"}
    assert (predictions["p_disgust"] == 1).all()
    assert any("single class" in note for note in fold["notes"])
