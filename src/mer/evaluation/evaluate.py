"""Stage 8: score the LOSO predictions of an experiment, and summarise experiments.

Every fold (held-out subject) of a seed writes `<seed_dir>/<subject>/predictions.csv`. The
headline scores are *pooled*: the test predictions of all folds of one seed are concatenated
and scored once, so every sample counts equally. The mean of per-subject scores (every
subject counts equally) is a different number; it is computed and written too, always under
its own name, never in place of the pooled one. Seeds are repeated runs of the whole LOSO
protocol; they are summarised by mean and sample standard deviation.

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

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mer.store import files

PREDICTION_COLUMNS = ("sample", "subject", "true_label", "predicted_label")
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


# --------------------------------------------------------------------------------------------
# Reading


def read_predictions(
    seed_dirs: dict[int, str | Path],
    subjects: list[str] | None = None,
    classes: list[str] | None = None,
) -> pd.DataFrame:
    """Every fold's predictions.csv of every seed, concatenated, with a `seed` column.

    `subjects`: the held-out subjects expected in each seed directory (a missing fold is then
    an error; other sub-directories are ignored); default: every sub-directory. Checks that
    each file is readable, non-empty, has the prediction columns, holds only its held-out
    subject and (if `classes` is given) only those labels, and that no sample appears twice
    within a seed.
    """
    tables = []
    for seed, seed_dir in sorted(seed_dirs.items()):
        seed_dir = Path(seed_dir)
        if subjects is None:
            if not seed_dir.is_dir():
                raise ValueError(f"seed {seed}: {seed_dir} is not a directory")
            fold_dirs = sorted(
                p for p in seed_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
            )
            if not fold_dirs:
                raise ValueError(f"seed {seed}: {seed_dir} holds no fold directory")
        else:
            fold_dirs = [seed_dir / str(subject) for subject in subjects]
        seed_tables = [
            _read_fold(fold_dir / "predictions.csv", fold_dir.name, classes)
            for fold_dir in fold_dirs
        ]
        seed_table = pd.concat(seed_tables, ignore_index=True)
        duplicated = seed_table["sample"].duplicated(keep=False)
        if duplicated.any():
            where = seed_table.loc[duplicated].groupby("sample")["subject"].apply(list)
            raise ValueError(
                f"seed {seed} ({seed_dir}): samples predicted more than once: "
                + "; ".join(f"{s} in folds {folds}" for s, folds in where.head(5).items())
            )
        seed_table.insert(0, "seed", int(seed))
        tables.append(seed_table)
    if not tables:
        raise ValueError("no seed directory given")
    return pd.concat(tables, ignore_index=True)


def _read_fold(path: Path, held_out: str, classes: list[str] | None) -> pd.DataFrame:
    text_columns = dict.fromkeys(PREDICTION_COLUMNS, str)
    if not path.is_file():
        raise ValueError(f"{path} is missing: the fold of subject {held_out!r} has not finished")
    try:
        table = pd.read_csv(path, dtype=text_columns)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is unreadable ({error}); rerun the fold that makes it") from error
    missing = [c for c in PREDICTION_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path} lacks the columns {missing} (has {list(table.columns)})")
    if table.empty:
        raise ValueError(f"{path} has no prediction rows")
    if table[list(PREDICTION_COLUMNS)].isna().any().any():
        raise ValueError(f"{path} has empty cells in {list(PREDICTION_COLUMNS)}")
    others = sorted(set(table["subject"]) - {held_out})
    if others:
        raise ValueError(
            f"{path}: rows of subjects {others} in the fold of held-out subject {held_out!r}; "
            "a fold's predictions must be its held-out subject's only"
        )
    if classes is not None:
        for column in ("true_label", "predicted_label"):
            unknown = sorted(set(table[column]) - set(classes))
            if unknown:
                raise ValueError(
                    f"{path}: {column} values {unknown} are not among the classes {classes}"
                )
    return table


# --------------------------------------------------------------------------------------------
# Metrics


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
        summary[name] = {
            "mean": float(values.mean()),
            "std": float(values.std(ddof=STD_DDOF)) if len(values) > STD_DDOF else None,
            "n_seeds": int(len(values)),
        }
    return summary


# --------------------------------------------------------------------------------------------
# Plots (matplotlib's object API: no pyplot state, no display needed)


def _save_figure(fig, out_png: str | Path) -> None:
    with files.atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=110)


def plot_confusion(
    confusion_counts: pd.DataFrame,
    confusion_normalised: pd.DataFrame,
    out_png: str | Path,
    title: str,
) -> None:
    """Heat map of the row-normalised matrix, each cell annotated with count and row share."""
    from matplotlib.figure import Figure

    classes = list(confusion_counts.index)
    size = max(4.0, 0.9 * len(classes) + 2.5)
    fig = Figure(figsize=(size + 1.5, size), layout="constrained")
    ax = fig.add_subplot()
    shares = confusion_normalised.to_numpy(float)
    image = ax.imshow(np.ma.masked_invalid(shares), cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true class")
    for i in range(len(classes)):
        for j in range(len(classes)):
            share = shares[i, j]
            text = f"{confusion_counts.iat[i, j]}" + ("" if np.isnan(share) else f"\n{share:.0%}")
            colour = "white" if not np.isnan(share) and share > 0.6 else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color=colour)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    support = confusion_counts.sum(axis=1)
    ax.set_yticks(range(len(classes)), [f"{c} (n={support[c]})" for c in classes])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    _save_figure(fig, out_png)


def plot_per_class_f1(per_class: pd.DataFrame, out_png: str | Path, title: str) -> None:
    """Bar per class: F1 (mean ± std over seeds when `per_class` has a seed column with
    several seeds), with the support under each class name. A class absent from the truth
    gets no bar: it is not part of macro-F1 (UF1)."""
    from matplotlib.figure import Figure

    table = per_class.reset_index() if "class" not in per_class.columns else per_class
    order = list(dict.fromkeys(table["class"]))
    grouped = table.groupby("class", sort=False)
    f1_mean = grouped["f1"].mean().reindex(order)
    several_seeds = grouped.size().max() > 1
    f1_std = grouped["f1"].std(ddof=STD_DDOF).reindex(order).fillna(0) if several_seeds else None
    support = grouped["support"].first().reindex(order)
    in_truth = (support > 0).to_numpy()
    shown_f1 = np.where(in_truth, f1_mean.fillna(0).to_numpy(), 0.0)
    shown_std = np.zeros(len(order)) if f1_std is None else np.where(in_truth, f1_std, 0.0)
    fig = Figure(figsize=(max(4.0, 0.9 * len(order) + 2.0), 3.6), layout="constrained")
    ax = fig.add_subplot()
    positions = np.arange(len(order))
    ax.bar(
        positions,
        shown_f1,
        yerr=shown_std if several_seeds else None,
        capsize=3,
        color="tab:blue",
    )
    for position, value, error, present in zip(
        positions, shown_f1, shown_std, in_truth, strict=True
    ):
        label = f"{value:.2f}" if present else "absent from\nthe truth"
        ax.text(position, value + error + 0.02, label, ha="center", va="bottom", fontsize=8)
    ax.set_xticks(positions, [f"{c}\n(n={n})" for c, n in support.items()], fontsize=8)
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("F1")
    ax.set_title(title, fontsize=10)
    _save_figure(fig, out_png)


# --------------------------------------------------------------------------------------------
# One experiment


def _json_ready(value):
    """NaN -> None, numpy scalars -> Python, recursively (metrics.json stays strict JSON)."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    return value


@dataclass
class ExperimentScores:
    """Everything evaluate_experiment writes, computed without touching files."""

    metrics: dict  # the metrics.json content (strict JSON: NaN -> None)
    per_class: pd.DataFrame  # every seed, seed column first
    per_subject: pd.DataFrame  # every seed; each seed's subject rows, then its mean row
    confusion: pd.DataFrame  # counts summed over seeds (each sample once per seed)
    confusion_normalised: pd.DataFrame  # rows of `confusion` divided by their sums


def score_experiment(
    predictions: pd.DataFrame, classes: list[str], experiment: str
) -> ExperimentScores:
    """Score every seed of read_predictions()'s table, pooled and per subject; summarise the
    seeds. Every seed must predict the same samples (else seeds are not comparable)."""
    seeds = sorted(int(s) for s in predictions["seed"].unique())
    samples_by_seed = {
        seed: set(predictions.loc[predictions["seed"] == seed, "sample"]) for seed in seeds
    }
    for seed in seeds[1:]:
        only_here = samples_by_seed[seed] - samples_by_seed[seeds[0]]
        only_first = samples_by_seed[seeds[0]] - samples_by_seed[seed]
        if only_here or only_first:
            raise ValueError(
                f"seeds {seeds[0]} and {seed} predict different samples: "
                f"{sorted(only_here)[:5]} only in seed {seed}, "
                f"{sorted(only_first)[:5]} only in seed {seeds[0]}"
            )

    databases = sorted(predictions["dataset"].unique()) if "dataset" in predictions else []
    by_database = len(databases) > 1  # a breakdown only where several databases are pooled
    pooled_by_seed, subject_mean_by_seed, database_by_seed = {}, {}, {}
    per_class_tables, per_subject_tables = [], []
    confusion_sum = None
    for seed in seeds:
        seed_predictions = predictions[predictions["seed"] == seed]
        pooled = pooled_metrics(seed_predictions, classes)
        subject_table = per_subject(seed_predictions, classes)
        pooled_by_seed[seed] = {
            **{name: pooled[name] for name in HEADLINE_METRICS},
            "n_samples": pooled["n_samples"],
            "n_folds": pooled["n_folds"],
            "confusion": pooled["confusion"].to_numpy().tolist(),
        }
        if by_database:
            database_by_seed[seed] = per_database(seed_predictions, classes)
        mean_row = subject_table.iloc[-1]
        subject_mean_by_seed[seed] = {name: float(mean_row[name]) for name in SUBJECT_METRICS}
        per_class_tables.append(pooled["per_class"].reset_index().assign(seed=seed))
        per_subject_tables.append(subject_table.assign(seed=seed))
        confusion_sum = (
            pooled["confusion"] if confusion_sum is None else confusion_sum + pooled["confusion"]
        )

    per_class_table = pd.concat(per_class_tables, ignore_index=True)
    per_class_table = per_class_table[["seed", *per_class_table.columns.drop("seed")]]
    per_subject_table = pd.concat(per_subject_tables, ignore_index=True)
    per_subject_table = per_subject_table[["seed", *per_subject_table.columns.drop("seed")]]
    confusion_normalised = confusion_sum.div(confusion_sum.sum(axis=1).replace(0, np.nan), axis=0)

    first = pooled_by_seed[seeds[0]]
    metrics = {
        "experiment": experiment,
        "classes": list(classes),
        "seeds": seeds,
        "n_seeds": len(seeds),
        "n_samples": first["n_samples"],
        "n_folds": first["n_folds"],
        "held_out_subjects": sorted(predictions["subject"].unique().tolist()),
        "class_support": {c: int(n) // len(seeds) for c, n in confusion_sum.sum(axis=1).items()},
        "pooled": {
            "per_seed": pooled_by_seed,
            "across_seeds": across_seeds(pooled_by_seed),
        },
        "mean_over_subjects": {
            "per_seed": subject_mean_by_seed,
            "across_seeds": across_seeds(subject_mean_by_seed, SUBJECT_METRICS),
        },
        "confusion_files": "counts summed over seeds (each sample once per seed)",
        "definitions": DEFINITIONS,
    }
    if by_database:
        metrics["per_database"] = {
            database: {
                "n_samples": database_by_seed[seeds[0]][database]["n_samples"],
                "n_folds": database_by_seed[seeds[0]][database]["n_folds"],
                "per_seed": {seed: database_by_seed[seed][database] for seed in seeds},
                "across_seeds": across_seeds(
                    {seed: database_by_seed[seed][database] for seed in seeds}
                ),
            }
            for database in databases
        }
        metrics["definitions"] = {**DEFINITIONS, "per_database": DEFINITIONS_PER_DATABASE}
    return ExperimentScores(
        metrics=_json_ready(metrics),
        per_class=per_class_table,
        per_subject=per_subject_table,
        confusion=confusion_sum,
        confusion_normalised=confusion_normalised,
    )


def evaluate_experiment(
    seed_dirs: dict[int, str | Path],
    classes: list[str],
    out_dir: str | Path,
    experiment: str,
    subjects: list[str] | None = None,
    databases: dict[str, str] | None = None,
) -> dict:
    """Read, score and write one experiment's predictions into out_dir:

    metrics.json (pooled scores per seed and mean ± std across seeds; the mean of per-subject
    scores, under its own key; sample and fold counts), per_class.csv and per_subject.csv
    (every seed, with a seed column), confusion.csv and confusion_normalised.csv (counts
    summed over seeds, each sample counted once per seed; the normalised rows are then the
    mean over seeds of the per-seed row shares), confusion.png, per_class_f1.png.
    `databases` (sample -> source database, from samples.tsv) adds per_database scores to
    metrics.json when the samples come from several databases.
    Returns the metrics.json content.
    """
    out_dir = Path(out_dir)
    predictions = read_predictions(seed_dirs, subjects, classes)
    if databases is not None:
        unknown = sorted(set(predictions["sample"]) - set(databases))
        if unknown:
            raise ValueError(f"predicted samples {unknown[:5]} are not in the samples table")
        predictions["dataset"] = predictions["sample"].map(databases)
    scores = score_experiment(predictions, classes, experiment)
    metrics = scores.metrics
    files.write_text_atomic(
        out_dir / "metrics.json", json.dumps(metrics, indent=2, allow_nan=False) + "\n"
    )
    _write_csv(scores.per_class, out_dir / "per_class.csv")
    _write_csv(scores.per_subject, out_dir / "per_subject.csv")
    _write_csv(scores.confusion, out_dir / "confusion.csv", index=True)
    _write_csv(scores.confusion_normalised, out_dir / "confusion_normalised.csv", index=True)
    seeds = metrics["seeds"]
    seeds_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"{len(seeds)} seeds, summed"
    headline = metrics["pooled"]["across_seeds"]
    plot_confusion(
        scores.confusion,
        scores.confusion_normalised,
        out_dir / "confusion.png",
        f"{experiment}: pooled LOSO confusion ({seeds_text})\n"
        f"accuracy {_mean_std(headline['accuracy'])}, UF1 {_mean_std(headline['macro_f1'])}",
    )
    plot_per_class_f1(
        scores.per_class,
        out_dir / "per_class_f1.png",
        f"{experiment}: per-class F1, pooled LOSO"
        + ("" if len(seeds) == 1 else f" (mean ± std over {len(seeds)} seeds)"),
    )
    return metrics


def _write_csv(table: pd.DataFrame, path: Path, index: bool = False) -> None:
    with files.atomic_path(path) as tmp:
        table.to_csv(tmp, index=index, float_format="%.6g")


def _mean_std(summary: dict, digits: int = 4) -> str:
    if summary["std"] is None:
        return f"{summary['mean']:.{digits}f}"
    return f"{summary['mean']:.{digits}f} ± {summary['std']:.{digits}f}"


# --------------------------------------------------------------------------------------------
# Published numbers and the summary


@dataclass(frozen=True)
class PublishedResult:
    """One row of the method paper's comparison tables, values as printed there (text, so
    that their precision is kept); None where our copy of the table has no value."""

    dataset: str  # "CASME II" or "SAMM"
    method: str
    f1: str | None
    accuracy: str | None
    experiment: str | None = None  # our experiment that corresponds to the row, if any


# Source: the authors' comparison tables as quoted in issue 6. In our copy the last two rows
# of each table have a value only in the F1 column; the lost accuracies stay None.
PUBLISHED: tuple[PublishedResult, ...] = (
    PublishedResult("CASME II", "ELRCN-TE", f1="0.5000", accuracy="0.5244"),
    PublishedResult("CASME II", "LBP-SIP", f1="0.4480", accuracy="0.4656"),
    PublishedResult("CASME II", "FDM", f1="0.4053", accuracy="0.4593"),
    PublishedResult("CASME II", "Adaptive MM + LBP-TOP", f1=None, accuracy="0.5191"),
    PublishedResult(
        "CASME II", "EVM + optical flow", f1="0.4705", accuracy=None, experiment="evm_flow"
    ),
    PublishedResult("CASME II", "MSCNN", f1="0.5650", accuracy=None, experiment="mscnn"),
    PublishedResult("SAMM", "HOOF", f1="0.33", accuracy="0.4217"),
    PublishedResult("SAMM", "HOG3D", f1="0.22", accuracy="0.3416"),
    PublishedResult("SAMM", "LBP-TOP", f1="0.1768", accuracy="0.3556", experiment="lbptop"),
    PublishedResult("SAMM", "MSCNN", f1="0.3173", accuracy=None, experiment="mscnn"),
    PublishedResult(
        "SAMM", "EVM + optical flow", f1="0.3569", accuracy=None, experiment="evm_flow"
    ),
)
PUBLISHED_DATASETS = ("CASME II", "SAMM")
COMPOSITE = "MEGC 2019 composite"
# The full composite (442 clips, 68 subjects, LOSO), (method, UF1, UAR) as published and
# quoted in issue 10 (MEGC 2019 results: See et al. 2019, Liong et al. 2019, Gan et al. 2019).
PUBLISHED_COMPOSITE = (
    ("LBP-TOP", "0.5882", "0.5785"),
    ("OFF-ApexNet", "0.7196", "0.7096"),
    ("STSTNet", "0.7353", "0.7605"),
)


def published_dataset(dataset: str) -> str | None:
    """'CASME II' / 'SAMM' / the composite for a dataset name such as casme2, CASME_II, samm,
    megc2019; else None."""
    key = re.sub(r"[^a-z0-9]", "", dataset.lower())
    if key in ("casme2", "casmeii"):
        return "CASME II"
    if key == "samm":
        return "SAMM"
    if key.startswith("megc2019") or key == "composite":
        return COMPOSITE
    return None


def published_table(dataset: str | None = None) -> pd.DataFrame:
    """PUBLISHED as a DataFrame with float f1/accuracy (NaN where not available)."""
    rows = [r for r in PUBLISHED if dataset is None or r.dataset == dataset]
    return pd.DataFrame(
        {
            "dataset": [r.dataset for r in rows],
            "method": [r.method for r in rows],
            "f1": [np.nan if r.f1 is None else float(r.f1) for r in rows],
            "accuracy": [np.nan if r.accuracy is None else float(r.accuracy) for r in rows],
            "our_experiment": [r.experiment for r in rows],
        }
    )


PROTOCOL_LINES = (
    "Leave-one-subject-out (LOSO): each subject is the test set of one fold, once; "
    "a fold's model never sees its held-out subject.",
    "Early stopping and the choice of the best epoch use a validation split of whole "
    "training subjects only (all augmented copies of a clip stay with their subject).",
    "No test-subject information enters training, model selection, normalisation (inputs "
    "are scaled by a fixed 1/255, never by data statistics) or over-sampling (fitted on the "
    "training subjects' features only); the held-out subject's un-augmented clips are read "
    "once, for the test predictions.",
    "Scores are pooled: the test predictions of all folds of one seed are concatenated and "
    "scored once; the table gives mean ± sample std (ddof 1) over seeds (no ± with one seed).",
    "accuracy = correct / all. Macro-F1 (UF1) = mean over the classes present in the ground "
    "truth of F1 = 2TP / (2TP + FP + FN). UAR = mean over the same classes of recall "
    "TP / (TP + FN). Weighted F1 = per-class F1 weighted by the number of true samples.",
)


def summary(
    metrics_by_experiment: dict[str, dict],
    dataset: str,
    synthetic: bool | None = None,
    published: bool = True,
) -> tuple[pd.DataFrame, str]:
    """(table, markdown): one row per experiment with pooled scores as mean ± std over seeds,
    the protocol, the mean of per-subject scores kept in a separate table, and (unless
    `published` is False) the published numbers, labelled as such. `synthetic` default: the
    dataset name contains "synth"."""
    if synthetic is None:
        synthetic = "synth" in dataset.lower()
    rows = []
    for experiment, metrics in metrics_by_experiment.items():
        headline = metrics["pooled"]["across_seeds"]
        row = {
            "experiment": experiment,
            "n_seeds": metrics["n_seeds"],
            "n_folds": metrics["n_folds"],
            "n_samples": metrics["n_samples"],
        }
        for name in HEADLINE_METRICS:
            row[f"{name}_mean"] = headline[name]["mean"]
            row[f"{name}_std"] = headline[name]["std"]
        rows.append(row)
    table = pd.DataFrame(rows)

    lines = [f"# Results on {dataset}", "", "## Protocol", ""]
    lines += [f"- {line}" for line in PROTOCOL_LINES]
    lines += [
        "",
        f"## Our results on {dataset}: pooled over all LOSO folds, mean ± std over seeds",
        "",
        "| experiment | accuracy | macro-F1 (UF1) | UAR | weighted F1 | seeds | folds | samples |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for experiment, metrics in metrics_by_experiment.items():
        headline = metrics["pooled"]["across_seeds"]
        cells = [_mean_std(headline[name]) for name in HEADLINE_METRICS]
        counts = [str(metrics[k]) for k in ("n_seeds", "n_folds", "n_samples")]
        lines.append(f"| {experiment} | " + " | ".join(cells + counts) + " |")
    lines += [
        "",
        "## Mean of per-subject scores (not pooled)",
        "",
        "Each held-out subject scored on its own test clips, then averaged over subjects with "
        "equal weight. Shown apart because it is a different number from the pooled score "
        "above; per-subject rows are in each experiment's per_subject.csv.",
        "",
        "| experiment | accuracy | macro-F1 (UF1) | UAR |",
        "|---|---|---|---|",
    ]
    for experiment, metrics in metrics_by_experiment.items():
        subject_mean = metrics["mean_over_subjects"]["across_seeds"]
        cells = [_mean_std(subject_mean[name]) for name in SUBJECT_METRICS]
        lines.append(f"| {experiment} | " + " | ".join(cells) + " |")

    lines += _per_database_markdown(metrics_by_experiment)
    if published:
        lines += _published_markdown(dataset, synthetic)
    return table, "\n".join(lines) + "\n"


def _per_database_markdown(metrics_by_experiment: dict[str, dict]) -> list[str]:
    """Pooled UF1 / UAR within each source database, for experiments that have them."""
    with_breakdown = {e: m for e, m in metrics_by_experiment.items() if m.get("per_database")}
    if not with_breakdown:
        return []
    lines = [
        "",
        "## Per source database: pooled within each database, mean ± std over seeds",
        "",
        "The same LOSO models (trained on all databases), their test predictions split by the "
        "database each clip comes from.",
        "",
        "| experiment | database | macro-F1 (UF1) | UAR | accuracy | folds | samples |",
        "|---|---|---|---|---|---|---|",
    ]
    for experiment, metrics in with_breakdown.items():
        for database, scores in metrics["per_database"].items():
            cells = [_mean_std(scores["across_seeds"][n]) for n in ("macro_f1", "uar", "accuracy")]
            counts = [str(scores["n_folds"]), str(scores["n_samples"])]
            lines.append(f"| {experiment} | {database} | " + " | ".join(cells + counts) + " |")
    return lines


def _published_composite_markdown() -> list[str]:
    lines = [
        "",
        f"## Published on the {COMPOSITE} (full composite, LOSO over 68 subjects)",
        "",
        "Copied from the publications, not produced by this workflow. Many later methods "
        "chose their epoch or model on the test subject (leaky), which ours never does; "
        "compare with that in mind.",
        "",
        "| method | UF1 (published) | UAR (published) |",
        "|---|---|---|",
    ]
    return lines + [f"| {method} | {uf1} | {uar} |" for method, uf1, uar in PUBLISHED_COMPOSITE]


def _published_markdown(dataset: str, synthetic: bool) -> list[str]:
    matching = published_dataset(dataset)
    if matching == COMPOSITE:
        return _published_composite_markdown()
    shown = [matching] if matching else list(PUBLISHED_DATASETS)
    lines = [
        "",
        "## Published by the method's authors on CASME II / SAMM",
        "",
        "Copied from the authors' comparison tables, not produced by this workflow. "
        "n/a: no value in our copy of the table (never estimated).",
    ]
    if synthetic:
        lines.append(
            f"These numbers are not comparable with the results above: those are on "
            f"synthetic data ({dataset}), not on CASME II or SAMM."
        )
    elif matching is None:
        lines.append(
            f"These numbers are not comparable with the results above, which are on {dataset!r}."
        )
    else:
        lines.append(
            f"Comparable with ours only as far as the classes, sample selection and protocol "
            f"match the authors' on {matching}."
        )
    for name in shown:
        lines += [
            "",
            f"### Published on {name}",
            "",
            "| method | F1 (published) | accuracy (published) | our experiment |",
            "|---|---|---|---|",
        ]
        for row in (r for r in PUBLISHED if r.dataset == name):
            lines.append(
                f"| {row.method} | {row.f1 or 'n/a'} | {row.accuracy or 'n/a'} | "
                f"{row.experiment or ''} |"
            )
    return lines


def read_metrics(path: str | Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is unreadable ({error}); rerun its evaluation") from error


def write_summary(
    metrics_paths: dict[str, str | Path],
    dataset: str,
    out_md: str | Path,
    out_tsv: str | Path,
    synthetic: bool | None = None,
    published: bool = True,
) -> pd.DataFrame:
    """summary() of the experiments' metrics.json files -> markdown and TSV, atomically."""
    metrics_by_experiment = {name: read_metrics(path) for name, path in metrics_paths.items()}
    table, markdown = summary(metrics_by_experiment, dataset, synthetic, published)
    files.write_text_atomic(out_md, markdown)
    with files.atomic_path(out_tsv) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    return table


# --------------------------------------------------------------------------------------------
# Parameter sweeps


def sweep_table(points: dict[float, dict], parameter: str = "alpha") -> pd.DataFrame:
    """One row per parameter value (sorted): pooled mean/std over seeds of each metric."""
    rows = []
    for value in sorted(points):
        headline = points[value]["pooled"]["across_seeds"]
        row = {parameter: value, "n_seeds": points[value]["n_seeds"]}
        for name in HEADLINE_METRICS:
            row[f"{name}_mean"] = headline[name]["mean"]
            row[f"{name}_std"] = headline[name]["std"]
        rows.append(row)
    return pd.DataFrame(rows)


def plot_sweep(points: dict[float, dict], out_png: str | Path, parameter: str = "alpha") -> None:
    """Pooled macro-F1 (UF1) and accuracy against a parameter, mean ± std over seeds."""
    from matplotlib.figure import Figure

    table = sweep_table(points, parameter)
    fig = Figure(figsize=(5.5, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for name, marker in (("macro_f1", "o"), ("accuracy", "s")):
        errors = table[f"{name}_std"].astype(float).fillna(0).to_numpy()
        ax.errorbar(
            table[parameter],
            table[f"{name}_mean"],
            yerr=errors if errors.any() else None,
            marker=marker,
            capsize=3,
            label=METRIC_TITLES[name],
        )
    ax.set_xticks(table[parameter].tolist())
    ax.set_xlabel(parameter)
    ax.set_ylabel("pooled LOSO score")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    n_seeds = sorted(set(table["n_seeds"]))
    ax.set_title(
        f"{parameter} sweep (mean ± std over {'/'.join(map(str, n_seeds))} seeds)"
        if max(n_seeds) > 1
        else f"{parameter} sweep (one seed)",
        fontsize=10,
    )
    _save_figure(fig, out_png)
