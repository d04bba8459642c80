"""Who sees what in a LOSO fold: the preprocessing a shard records, and the split of the
training subjects into fit and validation subjects (whole subjects, stratified where the
labels allow)."""

from __future__ import annotations

import json

import numpy as np


def shard_preprocessing(attrs) -> dict:
    """A shard's upstream parameters (evm, flow, masks, shards) and the versions that made it;
    params is {} for shards written without them (e.g. by tests)."""
    return {
        "params": json.loads(attrs.get("params", "{}")),
        "mer_version": str(attrs.get("mer_version", "")),
        "opencv_version": str(attrs.get("opencv_version", "")),
    }


def split_validation(
    subject_labels: dict[str, list[int]], fraction: float, seed: int, n_classes: int
) -> tuple[list[str], list[str], str | None]:
    """Whole training subjects -> (fit, validation, note). Stratified where possible: among
    seeded random choices, prefer validation sets that cover the most classes while the fit
    set keeps every class it can, then the closest class distribution to the whole."""
    subjects = sorted(subject_labels)
    if len(subjects) < 2:
        return subjects, [], "only one training subject: no validation set, fixed epochs"
    n_val = min(len(subjects) - 1, max(1, round(fraction * len(subjects))))
    rng = np.random.default_rng(seed)

    def counts(group):
        return np.bincount(np.concatenate([subject_labels[s] for s in group]), minlength=n_classes)

    overall = counts(subjects)
    best, best_score = None, None
    for _ in range(200):
        val = sorted(rng.choice(subjects, n_val, replace=False).tolist())
        fit = [s for s in subjects if s not in val]
        val_counts, fit_counts = counts(val), counts(fit)
        score = (
            ((fit_counts > 0) | (overall == 0)).sum(),
            (val_counts > 0).sum(),
            -np.abs(val_counts / val_counts.sum() - overall / overall.sum()).sum(),
        )
        if best_score is None or score > best_score:
            best, best_score = (fit, val), score
    fit, val = best
    note = None
    missing = [c for c in range(n_classes) if overall[c] and not counts(val)[c]]
    if missing:
        note = (
            f"validation subjects {val} lack classes {missing}: split by whole subjects "
            "could not be fully stratified"
        )
    return fit, val, note
