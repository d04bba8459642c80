from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mer.methods.adaptive import (
    adaptive_features,
    adaptive_loso_svm,
    adaptive_svm_fold,
    band_holds_a_bin,
)
from mer.methods.lbptop import lbptop_features, lbptop_length
from mer.methods.svm import svm_fold

CLASSES = ["negative", "positive"]
SIGNAL_BAND = 1


def noise_clip(seed: int, shape=(16, 32, 32)) -> np.ndarray:
    return np.random.default_rng(seed).integers(40, 200, shape).astype(np.uint8)


def banded_dataset(seed=0, n_subjects=6, per_subject=8, n_bands=3, n_dims=12):
    """Features (N, n_bands, D) of noise where only SIGNAL_BAND's first dims carry the class."""
    rng = np.random.default_rng(seed)
    n_samples = n_subjects * per_subject
    labels = np.tile(np.arange(per_subject) % 2, n_subjects)
    subjects = np.repeat([f"s{i}" for i in range(n_subjects)], per_subject)
    features = rng.normal(size=(n_samples, n_bands, n_dims))
    features[:, SIGNAL_BAND, :4] += 1.5 * labels[:, None]
    samples = np.array([f"clip{i:02d}" for i in range(n_samples)])
    return features, labels, subjects, samples


def test_features_have_one_lbptop_row_per_band():
    bands = ((0.5, 3.0), (3.0, 7.0), (7.0, 15.0))
    features = adaptive_features(noise_clip(0), fps=32, bands=bands, alpha=4, blocks=(2, 2))
    assert features.shape == (3, lbptop_length((2, 2))) == (3, 708)
    assert features.dtype == np.float32


def test_a_band_without_fft_bins_leaves_the_clip_unmagnified():
    clip = noise_clip(1)
    # 16 frames at 200 fps: bins 12.5 Hz apart, none in 0.5..4 Hz; 10..20 Hz holds 12.5 Hz.
    assert not band_holds_a_bin(16, 200, 0.5, 4.0) and band_holds_a_bin(16, 200, 10, 20)
    features = adaptive_features(clip, 200, bands=((0.5, 4.0), (10.0, 20.0)), blocks=(2, 2))
    unmagnified = lbptop_features(clip, blocks=(2, 2))
    np.testing.assert_array_equal(features[0], unmagnified)
    assert not np.array_equal(features[1], unmagnified)


def test_the_iir_filter_is_refused_because_it_ignores_the_band():
    with pytest.raises(ValueError, match="iir"):
        adaptive_features(noise_clip(2), 200, temporal_filter="iir")


@pytest.mark.parametrize(
    ("selection", "inner_folds"), [("inner_loso", None), ("inner_loso", 3), ("fisher", None)]
)
def test_the_band_that_carries_the_classes_is_chosen_and_beats_chance(selection, inner_folds):
    features, labels, subjects, samples = banded_dataset()
    correct = 0
    for held_out in sorted(set(subjects)):
        predictions, fold = adaptive_svm_fold(
            features,
            labels,
            subjects,
            samples,
            CLASSES,
            held_out,
            0,
            selection=selection,
            inner_folds=inner_folds,
        )
        assert fold["band"]["index"] == SIGNAL_BAND
        assert fold["band"]["selection"] == selection
        correct += (predictions["true_label"] == predictions["predicted_label"]).sum()
    assert correct / len(labels) > 0.75  # chance: 0.5


def test_the_held_out_subject_never_sways_the_band_or_the_fit():
    features, labels, subjects, samples = banded_dataset(seed=1)
    predictions, fold = adaptive_svm_fold(features, labels, subjects, samples, CLASSES, "s0", 0)
    is_held_out = subjects == "s0"
    rng = np.random.default_rng(9)
    # Held-out labels flipped and features replaced by a strong class signal in another band.
    other_labels = labels.copy()
    other_labels[is_held_out] = 1 - labels[is_held_out]
    other_features = features.copy()
    other_features[is_held_out] = rng.normal(size=features[is_held_out].shape) * 50
    other_features[is_held_out, 2, :] += 100 * other_labels[is_held_out, None]

    _, fold_changed_features = adaptive_svm_fold(
        other_features, labels, subjects, samples, CLASSES, "s0", 0
    )
    assert fold_changed_features == fold  # same band, scores, counts and notes
    predictions_changed_labels, fold_changed_labels = adaptive_svm_fold(
        features, other_labels, subjects, samples, CLASSES, "s0", 0
    )
    assert fold_changed_labels == fold
    probability_columns = ["predicted_label"] + [f"p_{name}" for name in CLASSES]
    pd.testing.assert_frame_equal(
        predictions_changed_labels[probability_columns], predictions[probability_columns]
    )


def test_output_is_svm_fold_on_the_chosen_band():
    features, labels, subjects, samples = banded_dataset(seed=2)
    bands_hz = ((0.5, 4.0), (4.0, 8.0), (8.0, 14.0))
    predictions, fold = adaptive_svm_fold(
        features, labels, subjects, samples, CLASSES, "s3", 7, C=0.5, bands_hz=bands_hz
    )
    chosen = fold["band"]["index"]
    expected_predictions, expected_fold = svm_fold(
        features[:, chosen], labels, subjects, samples, CLASSES, "s3", 7, C=0.5
    )
    pd.testing.assert_frame_equal(predictions, expected_predictions)
    assert {k: v for k, v in fold.items() if k not in ("band", "method")} == {
        k: v for k, v in expected_fold.items() if k != "method"
    }
    assert fold["band"]["hz"] == list(bands_hz[chosen])
    assert len(fold["band"]["scores"]) == 3


def test_loso_wrapper_predicts_every_subject_once():
    features, labels, subjects, samples = banded_dataset(seed=3, n_subjects=4)
    by_subject = adaptive_loso_svm(features, labels, subjects, CLASSES, 0, samples=samples)
    assert sorted(by_subject) == ["s0", "s1", "s2", "s3"]
    predicted = pd.concat(by_subject.values())
    assert sorted(predicted["sample"]) == sorted(samples)


def test_one_training_subject_falls_back_to_the_fisher_criterion():
    features, labels, subjects, samples = banded_dataset(seed=4, n_subjects=2)
    _, fold = adaptive_svm_fold(features, labels, subjects, samples, CLASSES, "s1", 0)
    assert fold["band"]["selection"] == "fisher"
    assert any("Fisher" in note for note in fold["notes"])
