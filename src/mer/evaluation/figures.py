"""Figures of the evaluation: confusion matrix, per-class F1, a parameter sweep, and the
training curves of all folds. Each is written atomically as a PNG; no display needed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from mer.evaluation.metrics import METRIC_TITLES, STD_DDOF
from mer.evaluation.summary import sweep_table
from mer.store import files

# --------------------------------------------------------------------------------------------
# Evaluation figures (matplotlib's object API: no pyplot state)


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


# --------------------------------------------------------------------------------------------
# Training curves


def plot_training_curves(fold_dirs: list[str | Path], out_png: str | Path, title: str) -> None:
    """Training and validation loss per epoch of every fold; a dot at the restored epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_train, ax_val) = plt.subplots(1, 2, figsize=(10, 3.8), sharex=True)
    for fold_dir in map(Path, fold_dirs):
        history = pd.read_csv(fold_dir / "history.csv")
        fold = json.loads((fold_dir / "fold.json").read_text())
        label = f"{fold['held_out']} (seed {fold['seed']})"
        line = ax_train.plot(history.epoch, history.train_loss, lw=1, label=label)[0]
        if "val_loss" in history:
            ax_val.plot(history.epoch, history.val_loss, lw=1, color=line.get_color())
            best = history[history.epoch == fold["best_epoch"]]
            ax_val.plot(best.epoch, best.val_loss, "o", ms=4, color=line.get_color())
    ax_train.set(title="training loss", xlabel="epoch", ylabel="cross-entropy")
    ax_val.set(title="validation loss (training subjects only)", xlabel="epoch")
    ax_train.legend(fontsize=6, ncol=2)
    fig.suptitle(title)
    fig.tight_layout()
    out_png = Path(out_png)
    with files.atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
