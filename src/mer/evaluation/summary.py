"""The summary of experiments (markdown and TSV: pooled scores, mean of per-subject scores, per
source database, the published numbers) and the table of a parameter sweep, from the
experiments' metrics.json files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from mer.evaluation import provenance
from mer.evaluation.claims import claims_markdown
from mer.evaluation.metrics import HEADLINE_METRICS, SUBJECT_METRICS
from mer.evaluation.published import published_markdown
from mer.evaluation.selection import beyond_markdown
from mer.store import files


def mean_std(summary: dict, digits: int = 4) -> str:
    """mean ± std of an across-seeds summary as text; the mean alone where std is None."""
    if summary["std"] is None:
        return f"{summary['mean']:.{digits}f}"
    return f"{summary['mean']:.{digits}f} ± {summary['std']:.{digits}f}"


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
    beyond: bool = False,
) -> tuple[pd.DataFrame, str]:
    """(table, markdown): one row per experiment with pooled scores as mean ± std over seeds,
    the protocol, the mean of per-subject scores kept in a separate table, and (unless
    `published` is False) the published numbers, labelled as such. `synthetic` default: the
    dataset name contains "synth". `beyond`: the variants' verdicts against mscnn and evm_flow
    and the recommending rule's choice (mer.evaluation.selection), its score in the table."""
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
        if beyond:
            row["validation_f1_mean"] = (metrics.get("validation") or {}).get("f1_mean")
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
        cells = [mean_std(headline[name]) for name in HEADLINE_METRICS]
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
        cells = [mean_std(subject_mean[name]) for name in SUBJECT_METRICS]
        lines.append(f"| {experiment} | " + " | ".join(cells) + " |")

    lines += provenance.compute_lines(metrics_by_experiment)
    lines += _per_database_markdown(metrics_by_experiment)
    lines += claims_markdown(metrics_by_experiment)
    if beyond:
        lines += beyond_markdown(metrics_by_experiment)
    if published:
        ours = {
            experiment: tuple(
                mean_std(metrics["pooled"]["across_seeds"][name])
                for name in ("macro_f1", "accuracy")
            )
            for experiment, metrics in metrics_by_experiment.items()
        }
        lines += published_markdown(dataset, synthetic, ours)
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
            cells = [mean_std(scores["across_seeds"][n]) for n in ("macro_f1", "uar", "accuracy")]
            counts = [str(scores["n_folds"]), str(scores["n_samples"])]
            lines.append(f"| {experiment} | {database} | " + " | ".join(cells + counts) + " |")
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
    beyond: bool = False,
) -> pd.DataFrame:
    """summary() of the experiments' metrics.json files -> markdown and TSV, atomically."""
    metrics_by_experiment = {name: read_metrics(path) for name, path in metrics_paths.items()}
    table, markdown = summary(metrics_by_experiment, dataset, synthetic, published, beyond)
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
