"""The rule that chooses the recommended model among `snakemake beyond`'s variants
(docs/experiments.md, "Beyond the method"), and the beyond summary's verdicts.

The rule reads validation scores only: each fold's validation macro-F1 and loss at the epoch
the fold keeps (history.csv at fold.json's best_epoch), measured on that fold's validation
subjects, which are training subjects of the fold. The held-out subjects' predictions never
reach it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from mer.evaluation.claims import verdict

TIE = 0.001  # validation macro-F1 means closer than this are decided by the validation loss
REFERENCES = ("mscnn", "evm_flow")  # the method and its best stream: what a variant must beat


def fold_validation(fold_dir: Path) -> dict | None:
    """A fold's validation scores at its kept epoch, its epochs and their seconds; None for a
    fold without validation (no validation subjects, or a descriptor method's SVM fold)."""
    fold_path, history_path = fold_dir / "fold.json", fold_dir / "history.csv"
    if not fold_path.is_file() or not history_path.is_file():
        return None
    best_epoch = json.loads(fold_path.read_text()).get("best_epoch")
    history = pd.read_csv(history_path)
    if "val_f1" not in history.columns or best_epoch not in set(history["epoch"]):
        return None
    kept = history.loc[history["epoch"] == best_epoch].iloc[0]
    return {
        "f1": float(kept["val_f1"]),
        "loss": float(kept["val_loss"]),
        "epochs": len(history),
        "epoch_seconds": float(history["seconds"].sum()),
    }


def validation_record(fold_dirs: list[Path]) -> dict | None:
    """metrics.json's `validation`: the folds' validation scores at their kept epochs, averaged
    over every fold and seed, with the epochs and epoch seconds per fold; None unless every
    fold has them."""
    folds = [fold_validation(Path(d)) for d in fold_dirs]
    if not folds or any(f is None for f in folds):
        return None
    return {
        "n_folds": len(folds),
        "f1_mean": float(np.mean([f["f1"] for f in folds])),
        "loss_mean": float(np.mean([f["loss"] for f in folds])),
        "epochs_per_fold": float(np.mean([f["epochs"] for f in folds])),
        "epoch_seconds_per_fold": float(np.mean([f["epoch_seconds"] for f in folds])),
        "definition": "validation macro-F1 and loss of each fold's kept epoch (its validation "
        "subjects are training subjects of the fold), mean over folds and seeds",
    }


def choose(metrics_by_variant: dict[str, dict]) -> str | None:
    """The rule: the highest mean validation macro-F1; means within TIE of the best are
    decided by the lower mean validation loss. None when no variant has validation scores."""
    scored = {n: m["validation"] for n, m in metrics_by_variant.items() if m.get("validation")}
    if not scored:
        return None
    best_f1 = max(v["f1_mean"] for v in scored.values())
    close = [n for n, v in scored.items() if v["f1_mean"] >= best_f1 - TIE]
    return min(close, key=lambda n: scored[n]["loss_mean"])


def beyond_markdown(metrics_by_variant: dict[str, dict]) -> list[str]:
    """The beyond summary's section: per variant its UF1, the rule's validation score, whether
    it beats mscnn and evm_flow by more than the seeds' spread, its cost, and the rule's choice."""
    if not all(r in metrics_by_variant for r in REFERENCES):
        return []
    uf1 = {n: m["pooled"]["across_seeds"]["macro_f1"] for n, m in metrics_by_variant.items()}
    reference_seconds = (metrics_by_variant["mscnn"].get("validation") or {}).get(
        "epoch_seconds_per_fold"
    )
    lines = [
        "",
        "## Beyond the method: verdicts against mscnn and evm_flow (UF1, mean ± std over seeds)",
        "",
        "A variant beats a reference where its UF1 exceeds the reference's by more than their "
        "seed std summed. `validation F1` is the recommending rule's score: the validation "
        "macro-F1 of each fold's kept epoch, on training subjects only, mean over folds and "
        "seeds. Cost: epochs per fold and the epochs' seconds per fold as a share of mscnn's "
        "(same run).",
        "",
        "| variant | UF1 | validation F1 | vs mscnn | vs evm_flow | beats both | epochs per "
        "fold | epoch time vs mscnn |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, metrics in metrics_by_variant.items():
        score = uf1[name]
        cells = [
            f"{score['mean']:.3f}" + ("" if score["std"] is None else f" ± {score['std']:.3f}")
        ]
        validation = metrics.get("validation")
        cells.append("—" if not validation else f"{validation['f1_mean']:.3f}")
        verdicts = [
            "—" if name == ref else verdict(score, uf1[ref]).replace("holds", "beats")
            for ref in REFERENCES
        ]
        cells += verdicts
        cells.append("yes" if all(v.startswith("beats") for v in verdicts) else "no")
        if validation:
            share = (
                f"{validation['epoch_seconds_per_fold'] / reference_seconds:.2f}x"
                if reference_seconds
                else "—"
            )
            cells += [f"{validation['epochs_per_fold']:.1f}", share]
        else:
            cells += ["—", "—"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    chosen = choose(metrics_by_variant)
    lines += [
        "",
        "The recommending rule (docs/experiments.md): the highest validation F1, ties within "
        f"{TIE} decided by the lower validation loss. On this data it chooses: "
        + (f"**{chosen}**." if chosen else "nothing (no variant has validation scores)."),
    ]
    return lines
