"""Who sees what in a LOSO fold: the training subjects' labels and the preprocessing the
shards record, the split of the training subjects into fit and validation subjects (whole
subjects, stratified where the labels allow), and the fold's datasets (FoldData)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from mer.learn.reader import ShardDataset
from mer.learn.shards import open_shard


def shard_preprocessing(attrs) -> dict:
    """A shard's upstream parameters (evm, flow, masks, shards) and the versions that made it;
    params is {} for shards written without them (e.g. by tests)."""
    return {
        "params": json.loads(attrs.get("params", "{}")),
        "mer_version": str(attrs.get("mer_version", "")),
        "opencv_version": str(attrs.get("opencv_version", "")),
    }


def read_subject_labels(shard_paths, held_out: str) -> tuple[dict, list[str], dict]:
    """(labels of each training subject's originals, classes, the shards' preprocessing).

    Of the held-out shard only its subject attribute is read. Refuses a held-out subject
    without a shard, and shards made with different preprocessing parameters.
    """
    subject_labels, classes, subjects = {}, None, set()
    preprocessing = {}  # shard -> its upstream parameters and versions, for the checkpoint
    for path in shard_paths:
        with open_shard(path) as shard:
            subject = str(shard.attrs["subject"])
            classes = classes or json.loads(shard.attrs["classes"])
            subjects.add(subject)
            preprocessing[str(path)] = shard_preprocessing(shard.attrs)
            if subject != held_out:
                originals = shard["augmentation"][:] == 0
                subject_labels[subject] = shard["label"][:][originals].astype(int)
    if held_out not in subjects:
        raise ValueError(f"held-out subject {held_out!r} has no shard among the inputs")
    if len({json.dumps(p, sort_keys=True) for p in preprocessing.values()}) > 1:
        raise ValueError(
            "the shards were made with different preprocessing parameters; rebuild them with "
            f"one configuration: {json.dumps(preprocessing, sort_keys=True)}"
        )
    return subject_labels, classes, next(iter(preprocessing.values()))


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


@dataclass
class FoldData:
    """Who sees what in this fold: its classes, subjects and datasets."""

    held_out: str
    classes: list[str]
    preprocessing: dict  # the shards' upstream parameters and versions (one for all)
    fit_subjects: list[str]
    val_subjects: list[str]
    fit_set: ShardDataset
    val_set: ShardDataset | None
    notes: list[str]

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def fold_data(shard_paths, held_out: str, validation_fraction: float, seed: int, log) -> FoldData:
    """The validation split of the training subjects and their datasets; notes are logged."""
    notes = []
    subject_labels, classes, preprocessing = read_subject_labels(shard_paths, held_out)
    n_classes = len(classes)
    fit_subjects, val_subjects, note = split_validation(
        subject_labels, validation_fraction, seed, n_classes
    )
    if note:
        notes.append(note)
    assert held_out not in fit_subjects and held_out not in val_subjects
    fit_set = ShardDataset(shard_paths, fit_subjects)
    val_set = ShardDataset(shard_paths, val_subjects, augmentations={0}) if val_subjects else None
    absent = sorted(set(range(n_classes)) - set(fit_set.labels.tolist()))
    if absent:
        notes.append(
            f"classes {[classes[c] for c in absent]} are absent from this fold's "
            "training set: the model cannot predict them"
        )
    for message in notes:
        log(f"note: {message}")
    return FoldData(
        held_out, classes, preprocessing, fit_subjects, val_subjects, fit_set, val_set, notes
    )
