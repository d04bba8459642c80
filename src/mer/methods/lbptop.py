"""The LBP-TOP + linear SVM baseline: hand-crafted dynamic texture features under the same LOSO.

LBP-TOP (Zhao & Pietikainen, "Dynamic texture recognition using local binary patterns with an
application to facial expressions", TPAMI 2007): local binary patterns on the three orthogonal
planes of a clip, XY (each frame), XT (each image row over time) and YT (each image column over
time), histogrammed per spatial block and concatenated.

Feature layout of `lbptop_features`, for a blocks=(rows, columns) grid and P neighbours:
    length = rows * columns * 3 * (P * (P - 1) + 3)        (P = 8: 59 bins, 25 blocks: 4425)
ordered block by block (row-major over the grid), within a block XY, XT, YT, within a plane
the "nri_uniform" codes 0 .. P*(P-1)+2 (the last bin collects every non-uniform pattern).
Each (block, plane) histogram sums to 1, so clips of different length and size compare.

`svm_fold` / `loso_svm` classify such features with a linear SVM, one fold per held-out
subject, and write predictions in the same format as a trained MSCNN fold (mer.learn.train), so that
one evaluation reads both.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from skimage.feature import local_binary_pattern

PLANES = ("XY", "XT", "YT")


def lbp_bins(points: int) -> int:
    """Number of "nri_uniform" codes for P neighbours: P(P-1) uniform rotations, the two flat
    patterns (all 0, all 1) and one bin for every non-uniform pattern."""
    return points * (points - 1) + 3


def lbptop_length(blocks: tuple[int, int] = (5, 5), points: int = 8) -> int:
    """Length of an `lbptop_features` vector: blocks x 3 planes x bins."""
    return blocks[0] * blocks[1] * len(PLANES) * lbp_bins(points)


def _plane_codes(stacked_slices: np.ndarray, radius: int, points: int) -> np.ndarray:
    """LBP codes of a pile of 2-D slices (S, A, B), computed as one tall (S*A, B) image.

    One skimage call instead of S: neighbours leak across slice boundaries only in the
    `radius` edge rows of each slice, which lbptop_features discards anyway.
    """
    n_slices, height, width = stacked_slices.shape
    tall_image = np.ascontiguousarray(stacked_slices).reshape(n_slices * height, width)
    codes = local_binary_pattern(tall_image, points, radius, method="nri_uniform")
    return codes.astype(np.int64).reshape(n_slices, height, width)


def lbptop_codes(clip: np.ndarray, radius: int = 1, points: int = 8) -> dict[str, np.ndarray]:
    """Plane name -> LBP codes (T', H', W') of every interior pixel of the clip.

    Interior: `radius` pixels away from every face of the (T, H, W) volume, the same centres
    for all three planes as in Zhao & Pietikainen; there every neighbour is a real pixel
    (skimage pads with zeros, which would break the invariance to a brightness offset).
    """
    if clip.ndim != 3:
        raise ValueError(f"a clip is (T, H, W) gray; got shape {clip.shape}")
    if not np.issubdtype(clip.dtype, np.integer):
        # Float ties make the >= comparisons unstable (skimage warns for the same reason).
        raise ValueError(f"a clip must hold integer gray levels (uint8); got {clip.dtype}")
    n_frames, height, width = clip.shape
    if min(n_frames, height, width) < 2 * radius + 1:
        raise ValueError(
            f"a clip of shape {clip.shape} has no interior pixel for LBP radius {radius}: "
            f"it needs at least {2 * radius + 1} frames, rows and columns"
        )
    interior = (
        slice(radius, n_frames - radius),
        slice(radius, height - radius),
        slice(radius, width - radius),
    )
    # Each plane's slices are piled along axis 0 and moved back to (T, H, W) order after.
    xy = _plane_codes(clip, radius, points)  # (T, H, W): one image per frame
    xt = _plane_codes(clip.transpose(1, 0, 2), radius, points).transpose(1, 0, 2)  # per row
    yt = _plane_codes(clip.transpose(2, 0, 1), radius, points).transpose(1, 2, 0)  # per column
    return {name: codes[interior] for name, codes in zip(PLANES, (xy, xt, yt), strict=True)}


def block_histograms(codes: np.ndarray, blocks: tuple[int, int], n_bins: int) -> np.ndarray:
    """(blocks[0] * blocks[1], n_bins) normalised histograms of codes (T, H, W) per block.

    Blocks split H and W as evenly as possible (sizes differ by at most one pixel) and pool
    all frames.
    """
    _, height, width = codes.shape
    block_rows, block_columns = blocks
    if block_rows < 1 or block_columns < 1 or height < block_rows or width < block_columns:
        raise ValueError(
            f"cannot split {height}x{width} interior pixels into {block_rows}x{block_columns} "
            "blocks; use fewer blocks or a larger clip"
        )
    row_block = np.arange(height) * block_rows // height
    column_block = np.arange(width) * block_columns // width
    block_of_pixel = row_block[:, None] * block_columns + column_block[None, :]
    n_blocks = block_rows * block_columns
    counts = np.bincount(
        (block_of_pixel[None] * n_bins + codes).ravel(), minlength=n_blocks * n_bins
    ).reshape(n_blocks, n_bins)
    return counts / counts.sum(axis=1, keepdims=True)


def lbptop_features(
    clip: np.ndarray, blocks: tuple[int, int] = (5, 5), radius: int = 1, points: int = 8
) -> np.ndarray:
    """LBP-TOP feature vector (float32) of a (T, H, W) uint8 clip; layout in the module doc.

    Invariant to a constant brightness offset (as long as no pixel saturates): every code only
    compares neighbours with their centre.
    """
    n_bins = lbp_bins(points)
    codes = lbptop_codes(clip, radius, points)
    per_plane = [block_histograms(codes[name], blocks, n_bins) for name in PLANES]
    return np.stack(per_plane, axis=1).astype(np.float32).ravel()  # (blocks, planes, bins)


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def svm_fold(
    features: np.ndarray,
    labels: np.ndarray,
    subjects: np.ndarray,
    samples: np.ndarray,
    classes: list[str],
    held_out: str,
    seed: int,
    C: float = 1.0,
) -> tuple[pd.DataFrame, dict]:
    """One LOSO fold: fit on every subject but `held_out`, predict `held_out`.

    Returns (predictions, fold) in mer.learn.train's format: predictions has the columns sample,
    subject, true_label, predicted_label, p_<class>; fold the keys of fold.json.

    - Standardisation uses the training subjects' statistics only.
    - class_weight="balanced": the classes are as skewed as CASME II's and the evaluation
      reports macro-F1 and UAR, which an unweighted SVM that favours 'others' would lose.
    - p_<class> is the softmax of the SVM's decision values over the classes seen in training
      (0 for the others): it ranks like the SVM, its argmax is predicted_label, but it is NOT
      a calibrated probability.
    - A training set with a single class predicts that class for every test clip (noted).
    """
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels, dtype=int)
    subjects = np.asarray(subjects).astype(str)
    samples = np.asarray(samples).astype(str)
    is_test = subjects == held_out
    if not is_test.any():
        raise ValueError(f"held-out subject {held_out!r} has no samples")
    train_features, train_labels = features[~is_test], labels[~is_test]
    if len(train_labels) == 0:
        raise ValueError(f"holding out {held_out!r} leaves no training samples")
    notes = _training_notes(train_labels, classes)
    probabilities, predicted = _fit_and_predict(
        train_features, train_labels, features[is_test], len(classes), seed, C
    )
    predictions = _predictions_table(
        samples[is_test], subjects[is_test], labels[is_test], predicted, probabilities, classes
    )
    train_subjects = sorted(set(subjects[~is_test].tolist()))
    fold = _fold_record(
        held_out, seed, C, train_subjects, train_labels, int(is_test.sum()), classes, notes
    )
    return predictions, fold


def _training_notes(train_labels: np.ndarray, classes: list[str]) -> list[str]:
    """fold.json notes on the classes a fold's training set lacks (or a single class)."""
    notes = []
    seen_classes = np.unique(train_labels)
    absent = sorted(set(range(len(classes))) - set(seen_classes.tolist()))
    if absent:
        notes.append(
            f"classes {[classes[c] for c in absent]} are absent from this fold's training "
            "set: the SVM cannot predict them"
        )
    if len(seen_classes) == 1:
        notes.append(
            f"a single class ({classes[seen_classes[0]]}) in training: predicted for every "
            "test clip"
        )
    return notes


def _fit_and_predict(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    n_classes: int,
    seed: int,
    C: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(p_<class> of every test clip, predicted class index): standardise, fit, decide."""
    # Imported here: scikit-learn costs about a second, paid by every per-clip features job.
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    seen_classes = np.unique(train_labels)
    probabilities = np.zeros((len(test_features), n_classes))
    if len(seen_classes) == 1:
        probabilities[:, seen_classes[0]] = 1.0
        return probabilities, np.full(len(test_features), seen_classes[0])
    scaler = StandardScaler().fit(train_features)
    # dual="auto" picks the dual solver for D > N (LBP-TOP: thousands of bins, few clips).
    svm = LinearSVC(
        C=C, class_weight="balanced", dual="auto", random_state=seed, max_iter=20000
    ).fit(scaler.transform(train_features), train_labels)
    test_features = scaler.transform(test_features)
    scores = svm.decision_function(test_features)
    if scores.ndim == 1:  # two classes: the score is for svm.classes_[1]
        scores = np.stack([np.zeros_like(scores), scores], axis=1)
    probabilities[:, svm.classes_] = _softmax(scores)
    return probabilities, svm.predict(test_features)


def _predictions_table(
    samples: np.ndarray,
    subjects: np.ndarray,
    labels: np.ndarray,
    predicted: np.ndarray,
    probabilities: np.ndarray,
    classes: list[str],
) -> pd.DataFrame:
    """The held-out clips' rows in mer.learn.train's predictions format."""
    predictions = pd.DataFrame(
        {
            "sample": samples,
            "subject": subjects,
            "true_label": [classes[i] for i in labels],
            "predicted_label": [classes[i] for i in predicted],
        }
    )
    for index, name in enumerate(classes):
        predictions[f"p_{name}"] = probabilities[:, index]
    return predictions


def _fold_record(
    held_out: str,
    seed: int,
    C: float,
    train_subjects: list[str],
    train_labels: np.ndarray,
    n_test_clips: int,
    classes: list[str],
    notes: list[str],
) -> dict:
    """The keys of fold.json for an SVM fold (no validation subjects: no early stopping)."""
    return {
        "held_out": held_out,
        "seed": seed,
        "device": "cpu",
        "method": "lbptop+linear_svm",
        "train_subjects": train_subjects,
        "validation_subjects": [],  # no early stopping: nothing to validate
        "test_subjects": [held_out],
        "counts": {
            "train_rows": int(len(train_labels)),
            "train_clips": int(len(train_labels)),
            "validation_clips": 0,
            "test_clips": n_test_clips,
            "train_per_class": {
                name: int((train_labels == index).sum()) for index, name in enumerate(classes)
            },
        },
        "svm": {"C": C, "class_weight": "balanced", "standardise": "training subjects"},
        "notes": notes,
    }


def loso_svm(
    features: np.ndarray,
    labels: np.ndarray,
    subjects: np.ndarray,
    classes: list[str],
    seed: int,
    C: float = 1.0,
    samples: np.ndarray | None = None,
) -> dict[str, pd.DataFrame]:
    """Held-out subject -> its predictions (mer.learn.train's format), for every subject.

    `samples` names the rows (default: their index as text). For fold.json as well, call
    `svm_fold` per subject.
    """
    subjects = np.asarray(subjects).astype(str)
    if samples is None:
        samples = np.arange(len(subjects)).astype(str)
    return {
        held_out: svm_fold(features, labels, subjects, samples, classes, held_out, seed, C)[0]
        for held_out in sorted(set(subjects.tolist()))
    }
