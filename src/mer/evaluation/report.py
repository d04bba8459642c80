"""Figures for the report that belong to no single stage: training curves of all folds."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


def plot_training_curves(fold_dirs: list[str | Path], out_png: str | Path, title: str) -> None:
    """Training and validation loss per epoch of every fold; a dot at the restored epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mer.store.files import atomic_path

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
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
