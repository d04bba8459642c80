"""Scores of LOSO predictions: confusion matrix, pooled scores, per subject, per source
database, and the summary of repeated seeds. Pure functions of prediction tables.

The headline scores are *pooled*: the test predictions of all folds of one seed are
concatenated and scored once, so every sample counts equally. The mean of per-subject scores
(every subject counts equally) is a different number; it is computed too, always under its own
name, never in place of the pooled one. Seeds are repeated runs of the whole LOSO protocol;
they are summarised by mean and sample standard deviation.

Metric definitions (over the configured classes; `support` = number of true samples):
- accuracy: correct predictions / all predictions;
- macro_f1 (UF1): unweighted mean of the per-class F1 over the configured classes that occur in
  the ground truth; F1 = 2 TP / (2 TP + FP + FN), which is 0 for a true class never predicted
  correctly. A class absent from the truth is left out (its recall is undefined), even if it
  was predicted; its false positives still lower the F1 of the true classes they were
  taken from;
- uar (unweighted average recall): mean of per-class recall TP / (TP + FN) over the classes
  that occur in the ground truth (= scikit-learn's balanced accuracy);
- weighted_f1: per-class F1 weighted by support (classes absent from the truth weigh 0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

HEADLINE_METRICS = ("accuracy", "macro_f1", "uar", "weighted_f1")
SUBJECT_METRICS = ("accuracy", "macro_f1", "uar")
METRIC_TITLES = {
    "accuracy": "accuracy",
    "macro_f1": "macro-F1 (UF1)",
    "uar": "UAR",
    "weighted_f1": "weighted F1",
}
SUBJECT_MEAN_LABEL = "(mean over subjects)"
STD_DDOF = 1  # seeds are a sample of training runs: sample standard deviation

DEFINITIONS = {
    "pooled": "predictions of all LOSO folds of one seed concatenated, then scored once",
    "mean_over_subjects": "each held-out subject scored on its own test samples, then the "
    "unweighted mean over subjects (not the pooled score)",
    "accuracy": "correct / all",
    "macro_f1": "UF1: mean over the configured classes present in the ground truth of "
    "F1 = 2TP / (2TP + FP + FN)",
    "uar": "mean over the classes present in the ground truth of recall TP / (TP + FN)",
    "weighted_f1": "per-class F1 weighted by the number of true samples",
    "across_seeds": f"mean and sample standard deviation (ddof {STD_DDOF}) over seeds; "
    "std is null with a single seed",
}
DEFINITIONS_PER_DATABASE = (
    "the pooled predictions of one seed restricted to one source database (samples.tsv's "
    "dataset column), scored over the classes present in that database's truth; the models "
    "are the composite's LOSO models, trained on all databases"
)


def confusion_matrix(predictions: pd.DataFrame, classes: list[str]) -> np.ndarray:
    """Counts (n_classes, n_classes): rows = true class, columns = predicted, in class order."""
    index = {name: i for i, name in enumerate(classes)}
    for column in ("true_label", "predicted_label"):
        unknown = sorted(set(predictions[column]) - set(index))
        if unknown:
            raise ValueError(f"{column} values {unknown} are not among the classes {classes}")
    true_index = predictions["true_label"].map(index).to_numpy(int)
    predicted_index = predictions["predicted_label"].map(index).to_numpy(int)
    counts = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(counts, (true_index, predicted_index), 1)
    return counts


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0 (undefined, not 0)."""
    numerator = np.asarray(numerator, dtype=float)
    denominator = np.asarray(denominator, dtype=float)
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def scores_from_confusion(counts: np.ndarray) -> dict:
    """accuracy, macro_f1, uar, weighted_f1 and per-class arrays from a confusion matrix."""
    counts = np.asarray(counts)
    true_positives = np.diag(counts).astype(float)
    support = counts.sum(axis=1)
    predicted = counts.sum(axis=0)
    precision = _ratio(true_positives, predicted)
    recall = _ratio(true_positives, support)
    f1 = _ratio(2 * true_positives, support + predicted)  # = 2TP / (2TP + FP + FN)
    in_truth = support > 0
    total = counts.sum()
    if total == 0:
        raise ValueError("no predictions to score")
    return {
        "accuracy": float(true_positives.sum() / total),
        "macro_f1": float(f1[in_truth].mean()),
        "uar": float(recall[in_truth].mean()),
        "weighted_f1": float((f1[in_truth] * support[in_truth]).sum() / support.sum()),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support,
        "predicted": predicted,
    }


def _single_seed(predictions: pd.DataFrame) -> None:
    if "seed" in predictions.columns and predictions["seed"].nunique() > 1:
        raise ValueError(
            "predictions of several seeds given; score one seed at a time "
            f"(seeds {sorted(predictions['seed'].unique())})"
        )


def pooled_metrics(predictions: pd.DataFrame, classes: list[str]) -> dict:
    """Scores of one seed's predictions pooled over all its folds.

    Returns accuracy, macro_f1 (UF1), uar, weighted_f1 and n_samples, n_folds (floats and
    ints), classes_in_truth, per_class (DataFrame indexed by class: precision, recall, f1,
    support, predicted; NaN where undefined: precision of a never-predicted class, recall of a
    class absent from the truth), confusion (counts DataFrame, rows = true, columns =
    predicted) and confusion_normalised (each row divided by its support; NaN rows for
    classes absent from the truth).
    """
    _single_seed(predictions)
    counts = confusion_matrix(predictions, classes)
    scores = scores_from_confusion(counts)
    per_class = pd.DataFrame(
        {
            "precision": scores["precision"],
            "recall": scores["recall"],
            "f1": scores["f1"],
            "support": scores["support"],
            "predicted": scores["predicted"],
        },
        index=pd.Index(classes, name="class"),
    )
    confusion = pd.DataFrame(
        counts,
        index=pd.Index(classes, name="true \\ predicted"),
        columns=pd.Index(classes),
    )
    normalised = confusion.div(confusion.sum(axis=1).replace(0, np.nan), axis=0)
    return {
        **{name: scores[name] for name in HEADLINE_METRICS},
        "n_samples": int(len(predictions)),
        "n_folds": int(predictions["subject"].nunique()),
        "classes_in_truth": [c for c, n in zip(classes, scores["support"], strict=True) if n],
        "per_class": per_class,
        "confusion": confusion,
        "confusion_normalised": normalised,
    }


def per_subject(predictions: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """One row per held-out subject (n, accuracy, macro_f1, uar over that subject's own test
    samples; macro_f1 and uar over the classes present in that subject's truth), then a last
    row, subject "(mean over subjects)", scope "mean over subjects", with the unweighted mean of
    the subject rows and n = all samples. That mean is *not* the pooled score."""
    _single_seed(predictions)
    rows = []
    for subject, subject_predictions in predictions.groupby("subject", sort=True):
        scores = scores_from_confusion(confusion_matrix(subject_predictions, classes))
        rows.append(
            {
                "subject": str(subject),
                "scope": "held-out subject",
                "n": int(len(subject_predictions)),
                **{name: scores[name] for name in SUBJECT_METRICS},
            }
        )
    table = pd.DataFrame(rows)
    mean_row = {
        "subject": SUBJECT_MEAN_LABEL,
        "scope": "mean over subjects",
        "n": int(table["n"].sum()),
        **{name: float(table[name].mean()) for name in SUBJECT_METRICS},
    }
    return pd.concat([table, pd.DataFrame([mean_row])], ignore_index=True)


def per_database(predictions: pd.DataFrame, classes: list[str]) -> dict[str, dict]:
    """Pooled scores of one seed within each source database (the `dataset` column of a
    composite such as MEGC 2019): {database: {accuracy, macro_f1, uar, weighted_f1,
    n_samples, n_folds}}, each over the classes present in that database's truth."""
    _single_seed(predictions)
    scores = {}
    for database, group in predictions.groupby("dataset", sort=True):
        database_scores = scores_from_confusion(confusion_matrix(group, classes))
        scores[str(database)] = {
            **{name: database_scores[name] for name in HEADLINE_METRICS},
            "n_samples": int(len(group)),
            "n_folds": int(group["subject"].nunique()),
        }
    return scores


def across_seeds(per_seed: dict[int, dict], metric_names=HEADLINE_METRICS) -> dict:
    """{metric: {"mean", "std", "n_seeds"}} over seeds; std is the sample standard deviation
    (ddof 1), None with a single seed (not estimable; 0 would claim no variation)."""
    if not per_seed:
        raise ValueError("no seed to summarise")
    summary = {}
    for name in metric_names:
        values = np.array([float(per_seed[seed][name]) for seed in sorted(per_seed)])
        if not np.isfinite(values).all():  # never average a NaN into a headline number
            bad = [
                seed for seed, v in zip(sorted(per_seed), values, strict=True) if not np.isfinite(v)
            ]
            raise ValueError(
                f"{name} of seed(s) {bad} is {values[~np.isfinite(values)][0]}, not averaged: a "
                "fold of that seed diverged or failed; see its training log and rerun it"
            )
        summary[name] = {
            "mean": float(values.mean()),
            "std": float(values.std(ddof=STD_DDOF)) if len(values) > STD_DDOF else None,
            "n_seeds": int(len(values)),
        }
    return summary
