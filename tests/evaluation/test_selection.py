"""The recommending rule of `snakemake beyond` (mer.evaluation.selection): it reads the folds'
validation scores at their kept epochs only, never the held-out subjects' predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from mer.evaluation import evaluate, selection
from mer.evaluation.summary import summary

CLASSES = ["a", "b"]


def _fold(fold_dir: Path, val_f1, val_loss, best_epoch, right=True, seconds=2.0) -> None:
    """A fold directory as `mer train` leaves it: fold.json, history.csv, predictions.csv."""
    fold_dir.mkdir(parents=True, exist_ok=True)
    epochs = range(1, len(val_f1) + 1)
    pd.DataFrame(
        {"epoch": epochs, "val_loss": val_loss, "val_f1": val_f1, "seconds": seconds}
    ).to_csv(fold_dir / "history.csv", index=False)
    (fold_dir / "fold.json").write_text(json.dumps({"best_epoch": best_epoch}))
    predictions = pd.DataFrame(
        {
            "sample": [f"{fold_dir.name}_1", f"{fold_dir.name}_2"],
            "subject": fold_dir.name,
            "true_label": ["a", "b"],
            "predicted_label": ["a", "b"] if right else ["b", "a"],
            "p_a": [1.0, 0.0] if right else [0.0, 1.0],
            "p_b": [0.0, 1.0] if right else [1.0, 0.0],
        }
    )
    predictions.to_csv(fold_dir / "predictions.csv", index=False)


def _experiment(root: Path, val_f1_at_best: float, right=True, seeds=(0, 1)) -> dict:
    seed_dirs = {}
    for seed in seeds:
        seed_dirs[seed] = root / f"seed{seed}"
        for subject in ("s1", "s2"):
            # epoch 2 is kept; epoch 3's higher validation F1 is not the kept epoch's
            _fold(
                seed_dirs[seed] / subject,
                [0.1, val_f1_at_best, 0.9],
                [1.5, 1.0, 1.2],
                2,
                right,
            )
    return seed_dirs


def test_the_validation_score_is_the_kept_epochs_mean_over_folds_and_seeds(tmp_path):
    folds = []
    for i, (f1, best) in enumerate([(0.4, 2), (0.6, 1)]):
        _fold(tmp_path / f"s{i}", [f1 if best == 1 else 0.0, f1], [1.0, 2.0], best)
        folds.append(tmp_path / f"s{i}")
    record = selection.validation_record(folds)
    assert record["f1_mean"] == 0.5
    assert record["loss_mean"] == 1.5  # epoch 2's loss of s0, epoch 1's of s1
    assert record["n_folds"] == 2 and record["epochs_per_fold"] == 2


def test_a_fold_without_validation_gives_no_record(tmp_path):
    _fold(tmp_path / "s1", [0.5], [1.0], 1)
    (tmp_path / "s2").mkdir()  # an SVM fold: no history
    assert selection.validation_record([tmp_path / "s1", tmp_path / "s2"]) is None


def test_the_held_out_predictions_do_not_reach_the_selection(tmp_path):
    """Every test prediction flipped from right to wrong: the test scores change, the rule's
    score and choice do not. A validation score changed: the choice follows it."""
    right = evaluate.evaluate_experiment(
        _experiment(tmp_path / "x", 0.5, True), CLASSES, tmp_path / "ex", "x"
    )
    wrong = evaluate.evaluate_experiment(
        _experiment(tmp_path / "y", 0.5, False), CLASSES, tmp_path / "ey", "y"
    )
    assert (
        right["pooled"]["across_seeds"]["accuracy"] != wrong["pooled"]["across_seeds"]["accuracy"]
    )
    assert right["validation"] == wrong["validation"]
    better = evaluate.evaluate_experiment(
        _experiment(tmp_path / "z", 0.7, False), CLASSES, tmp_path / "ez", "z"
    )
    assert selection.choose({"right": right, "better": better}) == "better"


def _metrics(uf1: list[float], f1_mean: float | None, loss_mean=1.0, seconds=10.0) -> dict:
    metrics = {
        "pooled": {
            "across_seeds": {
                "macro_f1": {"mean": float(np.mean(uf1)), "std": float(np.std(uf1, ddof=1))}
            }
        }
    }
    if f1_mean is not None:
        metrics["validation"] = {
            "f1_mean": f1_mean,
            "loss_mean": loss_mean,
            "epochs_per_fold": 3.0,
            "epoch_seconds_per_fold": seconds,
        }
    return metrics


def test_the_rule_takes_the_best_validation_f1_and_breaks_near_ties_by_the_loss():
    variants = {
        "mscnn": _metrics([0.5, 0.6], 0.50),
        "a": _metrics([0.1, 0.2], 0.7000, loss_mean=0.9),
        "b": _metrics([0.9, 0.9], 0.6995, loss_mean=0.8),  # within TIE: the lower loss wins
        "c": _metrics([0.9, 0.9], 0.6000, loss_mean=0.1),
    }
    assert selection.choose(variants) == "b"
    variants["b"]["validation"]["f1_mean"] = 0.65  # no longer within TIE
    assert selection.choose(variants) == "a"
    assert selection.choose({"lbptop": _metrics([0.2, 0.3], None)}) is None


def test_the_beyond_section_gives_verdicts_cost_and_the_choice():
    variants = {
        "mscnn": _metrics([0.60, 0.62], 0.5, seconds=10.0),
        "evm_flow": _metrics([0.70, 0.72], 0.6, seconds=4.0),
        "strong": _metrics([0.90, 0.91], 0.8, seconds=5.0),
        "close": _metrics([0.70, 0.73], 0.7, seconds=20.0),
    }
    lines = selection.beyond_markdown(variants)
    rows = {line.split(" | ")[0].strip("| "): line for line in lines if line.startswith("| ")}
    assert "| beats | beats | yes | 3.0 | 0.50x |" in rows["strong"]
    assert "| beats | within seed spread | no | 3.0 | 2.00x |" in rows["close"]
    assert "| — | reversed | no |" in rows["mscnn"]
    assert lines[-1].endswith("**strong**.")
    assert selection.beyond_markdown({"strong": variants["strong"]}) == []


def test_the_beyond_summary_carries_the_rules_score_and_section():
    def full(uf1, f1):
        metrics = _metrics(uf1, f1)
        for key in ("accuracy", "uar", "weighted_f1"):
            metrics["pooled"]["across_seeds"][key] = metrics["pooled"]["across_seeds"]["macro_f1"]
        metrics["mean_over_subjects"] = {"across_seeds": metrics["pooled"]["across_seeds"]}
        return dict(metrics, n_seeds=2, n_folds=8, n_samples=59, compute=[])

    variants = {"mscnn": full([0.6, 0.62], 0.5), "evm_flow": full([0.7, 0.72], 0.6)}
    table, markdown = summary(variants, "synthetic", published=False, beyond=True)
    assert list(table["validation_f1_mean"]) == [0.5, 0.6]
    assert "Beyond the method: verdicts" in markdown and "chooses: **evm_flow**" in markdown
    table, markdown = summary(variants, "synthetic", published=False)
    assert "validation_f1_mean" not in table and "Beyond the method" not in markdown
