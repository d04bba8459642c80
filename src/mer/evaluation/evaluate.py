"""Stage 8: score the LOSO predictions of an experiment and write its metrics, tables and figures.

Every fold (held-out subject) of a seed writes `<seed_dir>/<subject>/predictions.csv`. They are
read and checked here, scored by mer.evaluation.metrics (pooled over the folds of each seed,
per subject, per source database; seeds summarised by mean and sample standard deviation), and
written to the experiment's evaluation folder with the figures of mer.evaluation.figures.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mer.evaluation import provenance, selection
from mer.evaluation.figures import plot_confusion, plot_per_class_f1
from mer.evaluation.metrics import (
    DEFINITIONS,
    DEFINITIONS_PER_DATABASE,
    HEADLINE_METRICS,
    SUBJECT_METRICS,
    across_seeds,
    per_database,
    per_subject,
    pooled_metrics,
)
from mer.evaluation.summary import mean_std
from mer.store import files

PREDICTION_COLUMNS = ("sample", "subject", "true_label", "predicted_label")


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
        seed_tables = [
            _read_fold(fold_dir / "predictions.csv", fold_dir.name, classes)
            for fold_dir in _fold_dirs(seed, seed_dir, subjects)
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


def _fold_dirs(seed: int, seed_dir: Path, subjects: list[str] | None) -> list[Path]:
    """A seed's fold directories: one per expected subject, else every sub-directory."""
    if subjects is not None:
        return [seed_dir / str(subject) for subject in subjects]
    if not seed_dir.is_dir():
        raise ValueError(f"seed {seed}: {seed_dir} is not a directory")
    fold_dirs = sorted(p for p in seed_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not fold_dirs:
        raise ValueError(f"seed {seed}: {seed_dir} holds no fold directory")
    return fold_dirs


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
    probabilities = table.filter(regex="^p_").apply(pd.to_numeric, errors="coerce")
    if not np.isfinite(probabilities.to_numpy(float)).all():
        raise ValueError(
            f"{path} has NaN or infinite class probabilities: the fold of subject {held_out!r} "
            "diverged; rerun it with a lower train.learning_rate (its log names the epoch)"
        )
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
    _check_same_samples(predictions, seeds)
    databases = sorted(predictions["dataset"].unique()) if "dataset" in predictions else []
    if len(databases) < 2:
        databases = []  # a breakdown only where several databases are pooled
    by_seed = {
        seed: _score_seed(predictions[predictions["seed"] == seed], classes, bool(databases))
        for seed in seeds
    }
    confusion_sum = None
    for scores in by_seed.values():
        confusion = scores["confusion"]
        confusion_sum = confusion if confusion_sum is None else confusion_sum + confusion
    confusion_normalised = confusion_sum.div(confusion_sum.sum(axis=1).replace(0, np.nan), axis=0)
    metrics = _experiment_metrics(
        experiment, classes, predictions, by_seed, confusion_sum, databases
    )
    return ExperimentScores(
        metrics=_json_ready(metrics),
        per_class=_seed_column_first({s: by_seed[s]["per_class"] for s in seeds}),
        per_subject=_seed_column_first({s: by_seed[s]["per_subject"] for s in seeds}),
        confusion=confusion_sum,
        confusion_normalised=confusion_normalised,
    )


def _check_same_samples(predictions: pd.DataFrame, seeds: list[int]) -> None:
    """Raise unless every seed predicts the same samples as the first."""
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


def _score_seed(seed_predictions: pd.DataFrame, classes: list[str], by_database: bool) -> dict:
    """One seed: its pooled scores as written to metrics.json, the mean of its per-subject
    scores, its per-database scores (None unless `by_database`), its per-class and
    per-subject tables, and its confusion counts."""
    pooled = pooled_metrics(seed_predictions, classes)
    subject_table = per_subject(seed_predictions, classes)
    mean_row = subject_table.iloc[-1]
    return {
        "pooled": {
            **{name: pooled[name] for name in HEADLINE_METRICS},
            "n_samples": pooled["n_samples"],
            "n_folds": pooled["n_folds"],
            "confusion": pooled["confusion"].to_numpy().tolist(),
        },
        "subject_mean": {name: float(mean_row[name]) for name in SUBJECT_METRICS},
        "per_database": per_database(seed_predictions, classes) if by_database else None,
        "per_class": pooled["per_class"].reset_index(),
        "per_subject": subject_table,
        "confusion": pooled["confusion"],
    }


def _seed_column_first(tables: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """The seeds' tables concatenated, with a first column `seed`."""
    table = pd.concat(
        [seed_table.assign(seed=seed) for seed, seed_table in tables.items()], ignore_index=True
    )
    return table[["seed", *table.columns.drop("seed")]]


def _experiment_metrics(
    experiment: str,
    classes: list[str],
    predictions: pd.DataFrame,
    by_seed: dict[int, dict],
    confusion_sum: pd.DataFrame,
    databases: list[str],
) -> dict:
    """The metrics.json content (before _json_ready) from the seeds' scores."""
    seeds = list(by_seed)
    pooled_by_seed = {seed: scores["pooled"] for seed, scores in by_seed.items()}
    subject_mean_by_seed = {seed: scores["subject_mean"] for seed, scores in by_seed.items()}
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
    if databases:
        database_by_seed = {seed: scores["per_database"] for seed, scores in by_seed.items()}
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
    return metrics


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
    scores, under its own key; sample and fold counts; the folds' compute fingerprints),
    per_class.csv and per_subject.csv (every seed, with a seed column), confusion.csv and
    confusion_normalised.csv (counts summed over seeds, each sample counted once per seed; the
    normalised rows are then the mean over seeds of the per-seed row shares), confusion.png,
    per_class_f1.png.
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
    fold_dirs = [
        fold_dir
        for seed, seed_dir in sorted(seed_dirs.items())
        for fold_dir in _fold_dirs(seed, Path(seed_dir), subjects)
    ]
    metrics = dict(scores.metrics, compute=provenance.fold_fingerprints(fold_dirs))
    validation = selection.validation_record(fold_dirs)
    if validation is not None:  # networks with a validation split (not the SVM rows)
        metrics["validation"] = validation
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
        f"accuracy {mean_std(headline['accuracy'])}, UF1 {mean_std(headline['macro_f1'])}",
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
