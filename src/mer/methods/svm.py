"""The linear SVM of every descriptor method, one LOSO fold per held-out subject.

`svm_fold` / `loso_svm` classify per-clip feature vectors (LBP-TOP, LBP-SIP, HOOF, HOG3D, ...)
and write predictions in the same format as a trained MSCNN fold (mer.learn.train), so that one
evaluation reads both. Standardisation and fitting see the training subjects only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mer.learn.predictions import predictions_table


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
    method: str = "lbptop",
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
    probabilities, predicted = fit_and_predict(
        train_features, train_labels, features[is_test], len(classes), seed, C
    )
    predictions = predictions_table(
        samples[is_test], subjects[is_test], labels[is_test], predicted, probabilities, classes
    )
    train_subjects = sorted(set(subjects[~is_test].tolist()))
    fold = _fold_record(
        held_out, seed, C, train_subjects, train_labels, int(is_test.sum()), classes, notes
    )
    fold["method"] = f"{method}+linear_svm"  # the descriptor it classified
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


def fit_and_predict(
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
        "method": "linear_svm",  # set by svm_fold to <descriptor>+linear_svm
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
