"""Adaptive motion magnification + LBP-TOP (Park, Lee & Ro, ACM Multimedia 2015), leak-free.

The original magnifies each clip with Eulerian video magnification in the temporal frequency
band that discriminates the expression classes best, then classifies LBP-TOP features of the
magnified clip with an SVM. Here:

(a) `adaptive_features`: per clip, LBP-TOP (mer.methods.lbptop.lbptop_features) of the clip
    magnified (mer.preprocess.evm.magnify, linear EVM, ideal temporal filter by default) in each
    of a fixed set of candidate bands -> (n_bands, D). This depends on the clip alone, so the
    workflow can compute and cache it per sample before any fold exists. Default bands:
    DEFAULT_BANDS_HZ, four adjacent bands covering the project's EVM band 0.5..20 Hz (they need
    fps > 40, e.g. CASME II's 200 fps or SMIC-HS's 100). With the ideal filter a band that
    holds no FFT bin of the clip (bins are fps / T Hz apart) passes nothing, so magnifying in it
    leaves the clip unchanged: its row is the unmagnified clip's LBP-TOP (magnify itself would
    refuse such a band). Cost per 60-frame clip, 4 bands, 5x5 blocks, measured on the shared
    2-core machine (load 5-9): 3.4-6.4 s at 128 px, 0.9-1.6 s at 64 px (4 x magnify + LBP-TOP).
(b) `adaptive_svm_fold`: per LOSO fold, the band is chosen from the training subjects only,
    then a linear SVM (mer.methods.lbptop.svm_fold: training-only standardisation, balanced
    class weights) is fitted on that band's training features and predicts the held-out
    subject. Criteria (`selection`):
    - "inner_loso" (default): leave-one-subject-out over the training subjects, per band; the
      score is the UAR (mean per-class recall) of the pooled inner predictions, the metric the
      evaluation reports. Needs two training subjects (else "fisher" is used, noted). Cost: it
      fits n_bands x n_training_subjects SVMs per fold (CASME II scale, 255 clips, 4 bands of
      4425 bins: the slowest comparison row, docs/benchmarks.md); inner_folds=k deals the
      sorted training subjects into k groups instead (k fits per band).
    - "fisher": the trace ratio tr(S_between) / tr(S_within) of the standardised training
      features per band; no SVM fits for the choice (milliseconds).
    Ties go to the lower band index. The fold record (fold.json) holds the chosen band, every
    band's score and the criterion. The held-out subject's features and labels are never read
    before its predictions: changing them cannot change the band or the fit (tested).

Where it departs from the original, and why:
- Park et al. learn, on the training set, a model that predicts from a test sequence's own
  temporal characteristics which temporal filter magnifies it best, so each test clip can get
  its own band. We choose one band per fold, for all held-out clips alike: a per-clip predictor
  needs per-clip "best band" targets, which would come from the training labels through a second
  learned stage that their short paper does not specify well enough to reproduce; one band per
  fold keeps the selection simple and provably blind to the held-out subject.
- Candidate bands, alpha and the EVM implementation are the project's (mer.preprocess.evm:
  Laplacian pyramid, ideal filter, zero-phase), not their exact filter bank.
- The SVM is the project's linear SVM, shared with the LBP-TOP baseline, so the two rows differ
  only in the magnification.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from mer.methods.lbptop import lbptop_features
from mer.methods.svm import fit_and_predict, svm_fold
from mer.preprocess.evm import magnify, to_uint8

DEFAULT_BANDS_HZ = ((0.5, 4.0), (4.0, 8.0), (8.0, 14.0), (14.0, 20.0))
DEFAULT_ALPHA = 8.0
SELECTIONS = ("inner_loso", "fisher")


def band_holds_a_bin(n_frames: int, fps: float, low_hz: float, high_hz: float) -> bool:
    """Whether the ideal filter of mer.preprocess.evm keeps any FFT bin of an n_frames clip
    (it keeps the bins with low_hz <= f <= high_hz)."""
    bins_hz = np.fft.rfftfreq(n_frames, d=1.0 / fps)
    return bool(((bins_hz >= low_hz) & (bins_hz <= high_hz)).any())


def adaptive_features(
    clip: np.ndarray,
    fps: float,
    bands: tuple[tuple[float, float], ...] = DEFAULT_BANDS_HZ,
    alpha: float = DEFAULT_ALPHA,
    blocks: tuple[int, int] = (5, 5),
    radius: int = 1,
    points: int = 8,
    temporal_filter: str = "ideal",
    **magnify_params,
) -> np.ndarray:
    """(n_bands, lbptop_length(blocks, points)) float32: LBP-TOP of the (T, H, W) uint8 clip
    magnified in each band (low_hz, high_hz). magnify_params go to mer.preprocess.evm.magnify
    (levels, lambda_c); the magnified clip is rounded and saturated to uint8 for LBP-TOP."""
    if temporal_filter == "iir":
        raise ValueError("the 'iir' filter ignores low_hz/high_hz: use 'ideal' or 'butterworth'")
    if len(bands) == 0:
        raise ValueError("give at least one candidate band (low_hz, high_hz)")
    rows = []
    for low_hz, high_hz in bands:
        if temporal_filter == "ideal" and not band_holds_a_bin(len(clip), fps, low_hz, high_hz):
            rows.append(lbptop_features(clip, blocks, radius, points))
            continue
        with warnings.catch_warnings():
            # The bands above the first drop the lowest FFT bin on purpose (magnify warns).
            warnings.filterwarnings("ignore", message=r"low_hz=.*drops the first FFT bin")
            magnified = magnify(
                clip,
                fps,
                alpha=alpha,
                low_hz=low_hz,
                high_hz=high_hz,
                temporal_filter=temporal_filter,
                **magnify_params,
            )
        rows.append(lbptop_features(to_uint8(magnified), blocks, radius, points))
    return np.stack(rows).astype(np.float32)


def unweighted_recall(labels: np.ndarray, predicted: np.ndarray) -> float:
    """UAR: the mean over the classes present in labels of the share predicted right."""
    return float(np.mean([(predicted[labels == c] == c).mean() for c in np.unique(labels)]))


def inner_loso_score(
    features: np.ndarray,
    labels: np.ndarray,
    subjects: np.ndarray,
    n_classes: int,
    seed: int,
    C: float,
    inner_folds: int | None = None,
) -> float:
    """UAR of subject-wise cross-validated predictions over these (training) samples only:
    leave-one-subject-out, or with inner_folds=k the sorted subjects dealt into k groups."""
    subject_names = sorted(set(subjects.tolist()))
    n_groups = len(subject_names) if inner_folds is None else min(inner_folds, len(subject_names))
    group_of_subject = {name: index % n_groups for index, name in enumerate(subject_names)}
    groups = np.array([group_of_subject[name] for name in subjects.tolist()])
    predicted = np.empty(len(labels), dtype=int)
    for group in range(n_groups):
        is_inner_test = groups == group
        _, predicted[is_inner_test] = fit_and_predict(
            features[~is_inner_test],
            labels[~is_inner_test],
            features[is_inner_test],
            n_classes,
            seed,
            C,
        )
    return unweighted_recall(labels, predicted)


def fisher_score(features: np.ndarray, labels: np.ndarray) -> float:
    """tr(S_between) / tr(S_within) of the standardised features: class separation per unit
    spread, summed over dimensions (a trace ratio stays finite when single bins are constant)."""
    spread = features.std(axis=0)
    standardised = (features - features.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    between = within = 0.0
    for label in np.unique(labels):
        members = standardised[labels == label]
        class_mean = members.mean(axis=0)
        between += len(members) * float((class_mean**2).sum())  # overall mean is 0
        within += float(((members - class_mean) ** 2).sum())
    return between / within if within > 0 else 0.0


def band_scores(
    train_features_by_band: np.ndarray,
    train_labels: np.ndarray,
    train_subjects: np.ndarray,
    n_classes: int,
    seed: int,
    C: float,
    selection: str,
    inner_folds: int | None = None,
) -> np.ndarray:
    """(n_bands,) score of each band on the training samples (higher is better)."""
    if selection == "fisher":
        return np.array(
            [fisher_score(band, train_labels) for band in train_features_by_band.transpose(1, 0, 2)]
        )
    return np.array(
        [
            inner_loso_score(band, train_labels, train_subjects, n_classes, seed, C, inner_folds)
            for band in train_features_by_band.transpose(1, 0, 2)
        ]
    )


def adaptive_svm_fold(
    features_by_band: np.ndarray,
    labels: np.ndarray,
    subjects: np.ndarray,
    samples: np.ndarray,
    classes: list[str],
    held_out: str,
    seed: int,
    C: float = 1.0,
    selection: str = "inner_loso",
    bands_hz: tuple[tuple[float, float], ...] | None = None,
    inner_folds: int | None = None,
) -> tuple[pd.DataFrame, dict]:
    """One LOSO fold: choose the band on every subject but `held_out`, fit a linear SVM on that
    band's training features, predict `held_out`.

    Returns (predictions, fold) exactly as mer.methods.lbptop.svm_fold (mer.learn.train's
    format); fold gains "band": the chosen index, its (low_hz, high_hz) if bands_hz is given,
    every band's score, the criterion and why. features_by_band: (N, n_bands, D).
    """
    if selection not in SELECTIONS:
        raise ValueError(f"unknown selection {selection!r}; use one of {SELECTIONS}")
    if inner_folds is not None and inner_folds < 2:
        raise ValueError(
            f"inner_folds must be >= 2 (or None: leave-one-subject-out); got {inner_folds}"
        )
    features_by_band = np.asarray(features_by_band, dtype=np.float64)
    if features_by_band.ndim != 3:
        raise ValueError(f"features_by_band must be (N, n_bands, D); got {features_by_band.shape}")
    n_bands = features_by_band.shape[1]
    if bands_hz is not None and len(bands_hz) != n_bands:
        raise ValueError(f"{len(bands_hz)} bands_hz given for {n_bands} bands of features")
    labels = np.asarray(labels, dtype=int)
    subjects = np.asarray(subjects).astype(str)
    is_train = subjects != held_out
    if is_train.all():
        raise ValueError(f"held-out subject {held_out!r} has no samples")
    train_subjects = subjects[is_train]
    notes = []
    if selection == "inner_loso" and len(set(train_subjects.tolist())) < 2:
        selection = "fisher"
        notes.append("one training subject: no inner LOSO possible, band chosen by Fisher ratio")
    # Only the training rows reach the selection: the held-out subject cannot sway the band.
    scores = band_scores(
        features_by_band[is_train],
        labels[is_train],
        train_subjects,
        len(classes),
        seed,
        C,
        selection,
        inner_folds,
    )
    chosen = int(np.argmax(scores))  # first of equal scores: the lower band
    predictions, fold = svm_fold(
        features_by_band[:, chosen], labels, subjects, samples, classes, held_out, seed, C
    )
    fold["method"] = "adaptive_mm+lbptop+linear_svm"
    fold["band"] = _band_record(chosen, scores, selection, bands_hz, inner_folds)
    fold["notes"] = notes + fold["notes"]
    return predictions, fold


def _band_record(
    chosen: int,
    scores: np.ndarray,
    selection: str,
    bands_hz: tuple[tuple[float, float], ...] | None,
    inner_folds: int | None,
) -> dict:
    inner_split = "leave-one-subject-out" if inner_folds is None else f"{inner_folds}-group"
    criterion = {
        "inner_loso": f"UAR of {inner_split} linear SVM over the training subjects",
        "fisher": "trace ratio of between- to within-class scatter of the training features",
    }[selection]
    return {
        "index": chosen,
        "hz": list(bands_hz[chosen]) if bands_hz is not None else None,
        "selection": selection,
        "inner_folds": inner_folds if selection == "inner_loso" else None,
        "scores": [float(score) for score in scores],
        "why": f"highest {criterion} ({float(scores[chosen]):.4f}; ties: lowest band)",
    }


def adaptive_loso_svm(
    features_by_band: np.ndarray,
    labels: np.ndarray,
    subjects: np.ndarray,
    classes: list[str],
    seed: int,
    C: float = 1.0,
    samples: np.ndarray | None = None,
    selection: str = "inner_loso",
    bands_hz: tuple[tuple[float, float], ...] | None = None,
    inner_folds: int | None = None,
) -> dict[str, pd.DataFrame]:
    """Held-out subject -> its predictions (mer.learn.train's format), for every subject, each
    fold choosing its own band. For fold.json as well, call `adaptive_svm_fold` per subject."""
    subjects = np.asarray(subjects).astype(str)
    if samples is None:
        samples = np.arange(len(subjects)).astype(str)
    return {
        held_out: adaptive_svm_fold(
            features_by_band,
            labels,
            subjects,
            samples,
            classes,
            held_out,
            seed,
            C,
            selection,
            bands_hz,
            inner_folds,
        )[0]
        for held_out in sorted(set(subjects.tolist()))
    }
