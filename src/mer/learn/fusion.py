"""Late fusion's weights (train.fusion: late): one non-negative weight per stream, summing to
one, chosen on the validation subjects (whole training subjects) by the log-loss of the
weighted average of the streams' probabilities. The held-out subject is never passed here."""

from __future__ import annotations

import numpy as np
import torch

from mer.learn import inference
from mer.learn.model import MSCNN
from mer.learn.reader import ShardDataset

GRID_STEPS = 20  # weights in steps of 0.05


def _compositions(total: int, parts: int):
    if parts == 1:
        yield (total,)
        return
    for first in range(total, -1, -1):
        for rest in _compositions(total - first, parts - 1):
            yield (first, *rest)


def simplex_grid(n_streams: int, steps: int = GRID_STEPS) -> np.ndarray:
    """Every weight vector (n_streams,) of multiples of 1/steps summing to one, (G, n_streams),
    the first stream's full weight first."""
    return np.array(list(_compositions(steps, n_streams)), dtype=np.float64) / steps


def best_weights(stream_probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The grid's weights with the lowest log-loss of the fused probabilities; of equal ones
    the first in the grid's order."""
    grid = simplex_grid(stream_probabilities.shape[1])
    fused = np.einsum("gs,nsc->gnc", grid, stream_probabilities.astype(np.float64))
    true_class = fused[:, np.arange(len(labels)), labels]
    log_loss = -np.log(true_class + 1e-12).mean(axis=1)
    return grid[int(np.argmin(log_loss))]


@torch.inference_mode()
def stream_probabilities(model: MSCNN, dataset: ShardDataset, device) -> np.ndarray:
    """Each stream's class probabilities on every row of `dataset`, (N, streams, classes)."""
    features, _ = inference.predict(model, dataset, device)
    logits = model.stream_logits(torch.as_tensor(features, device=device))
    return torch.softmax(logits.float(), dim=2).cpu().numpy()


def fit_fusion_weights(model: MSCNN, val_set: ShardDataset, device) -> dict[str, float]:
    """Fit the fusion weights on the validation subjects' rows and set them in the model."""
    weights = best_weights(
        stream_probabilities(model, val_set, device), val_set.labels.numpy().astype(int)
    )
    model.fusion_weights.copy_(torch.as_tensor(weights, dtype=torch.float32))
    return {s: float(w) for s, w in zip(model.streams, weights, strict=True)}
