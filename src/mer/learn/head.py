"""The classifier head refitted after the dense layer: the training features balanced by an
over-sampler (fitted on the training subjects' features only), then the head trained anew on
them. With late fusion each stream's classifier is refitted on its own trunk's columns of the
same balanced rows."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mer.learn import inference, split
from mer.learn.model import MSCNN, TRUNK_FEATURES


def oversample_features(
    features: np.ndarray, labels: np.ndarray, method: str, seed: int
) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Balance dense-layer features with imbalanced-learn, then shuffle (the samplers append
    the new rows grouped by class). Falls back to random over-sampling, with a note, where
    SMOTE/ADASYN cannot run (a class with a single sample, nothing to generate)."""
    from imblearn.over_sampling import ADASYN, SMOTE, RandomOverSampler

    note = None
    smallest = np.bincount(labels)[np.unique(labels)].min()
    if method in ("smote", "adasyn") and smallest < 2:
        note = f"{method}: a class has a single training sample; used random over-sampling"
        method = "random"
    neighbours = int(min(5, smallest - 1)) if smallest > 1 else 1
    sampler = {
        "random": lambda: RandomOverSampler(random_state=seed),
        "smote": lambda: SMOTE(random_state=seed, k_neighbors=neighbours),
        "adasyn": lambda: ADASYN(random_state=seed, n_neighbors=neighbours),
    }[method]()
    if len(np.unique(labels)) < 2:
        note = "a single class in training: nothing to balance"
        balanced_x, balanced_y = features, labels
    else:
        try:
            balanced_x, balanced_y = sampler.fit_resample(features, labels)
        except (ValueError, RuntimeError) as error:  # ADASYN: "no samples will be generated"
            note = f"{method} failed ({error}); used random over-sampling"
            balanced_x, balanced_y = RandomOverSampler(random_state=seed).fit_resample(
                features, labels
            )
    order = np.random.default_rng(seed).permutation(len(balanced_y))
    return balanced_x[order], balanced_y[order], note


def refit_head(
    head: nn.Linear,
    features: np.ndarray,
    labels: np.ndarray,
    epochs: int,
    seed: int,
    batch_size: int = 64,
    learning_rate: float = 0.01,
) -> None:
    """Train the classifier head (softmax regression) on balanced features, in place."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(features, dtype=torch.float32)
    y = torch.as_tensor(labels, dtype=torch.int64)
    optimiser = torch.optim.SGD(head.parameters(), lr=learning_rate, momentum=0.9)
    head.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(y), generator=generator).split(batch_size):
            optimiser.zero_grad()
            nn.functional.cross_entropy(head(x[batch]), y[batch]).backward()
            optimiser.step()


def refit(model: MSCNN, data: split.FoldData, config, seed: int, device, log) -> list[str]:
    """Refit the head on over-sampled dense features of the training (fit) subjects, for the
    feature over-samplers; returns the subjects the over-sampler saw."""
    if config.oversampler not in ("random", "smote", "adasyn"):
        return []
    fit_set = data.fit_set
    fit_features, _ = inference.predict(model, fit_set, device)
    balanced_x, balanced_y, note = oversample_features(
        fit_features, fit_set.labels.numpy(), config.oversampler, seed
    )
    if note:
        data.notes.append(note)
        log(f"note: {note}")
    model.head.cpu()
    if model.fusion == "dense":
        refit_head(model.head, balanced_x, balanced_y, config.head_epochs, seed, config.batch_size)
    else:
        for i, stream in enumerate(model.streams):
            columns = balanced_x[:, i * TRUNK_FEATURES : (i + 1) * TRUNK_FEATURES]
            refit_head(
                model.head[stream], columns, balanced_y, config.head_epochs, seed, config.batch_size
            )
    model.head.to(device)
    log(
        f"head refitted on {len(balanced_y)} balanced features of {len(fit_set)} "
        f"training rows ({config.oversampler})"
    )
    return sorted(set(fit_set.subject))
