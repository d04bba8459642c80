"""Forward passes of a model over a dataset without gradients: BatchNorm statistics
re-estimated for the current weights ("precise BN"), then predictions and their scores.
Predictions run in fp32 whatever the training precision (mer.learn.precision)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import f1_score
from torch import nn

from mer.learn.model import MSCNN
from mer.learn.precision import Precision, to_device
from mer.learn.reader import ShardDataset


@torch.no_grad()  # not inference_mode: the BatchNorm buffers it updates are trained with later
def recalibrate_batchnorm(
    model: MSCNN, dataset, device, rows: int, generator, precision: Precision
) -> None:
    """Re-estimate BatchNorm running statistics for the current weights ("precise BN").

    With few, small batches per epoch the running averages lag far behind the weights, and an
    evaluation-mode model then predicts near chance although it fits its batches. A forward
    pass over (a sample of) the training rows with cumulative averaging fixes that; it uses
    training rows only. It runs in the training steps' precision: the statistics are those
    of the activations the training steps produce.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative moving average over this pass
    chosen = torch.randperm(len(dataset), generator=generator)[:rows]
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(dataset, chosen.tolist()), batch_size=64, shuffle=False
    )
    model.train()
    for batch in loader:
        with precision.autocast():
            model.features(precision.inputs(batch, model.streams, device))  # no stream dropout
    for norm in norms:
        norm.momentum = 0.1
    model.eval()


@torch.inference_mode()
def predict(
    model: MSCNN, dataset: ShardDataset, device, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """(dense features, class probabilities) of every row of a dataset, in order."""
    model.eval()
    features, probabilities = [], []
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for batch in loader:
        dense = model.features(to_device(batch, model.streams, device))
        logits = model.classify(dense)
        features.append(dense.float().cpu())
        probabilities.append(torch.softmax(logits.float(), dim=1).cpu())
    return torch.cat(features).numpy(), torch.cat(probabilities).numpy()


def scores(labels: np.ndarray, probabilities: np.ndarray, n_classes: int) -> dict:
    predicted = probabilities.argmax(1)
    loss = float(
        nn.functional.nll_loss(
            torch.log(torch.as_tensor(probabilities) + 1e-12),
            torch.as_tensor(labels, dtype=torch.int64),
        )
    )
    return {
        "loss": loss,
        "accuracy": float((predicted == labels).mean()),
        "f1": float(
            f1_score(labels, predicted, labels=range(n_classes), average="macro", zero_division=0)
        ),
    }
