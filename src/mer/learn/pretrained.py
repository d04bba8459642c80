"""train.init_weights: every trunk starts from a local file of ResNet-18 weights (a torchvision
resnet18 state_dict, e.g. ImageNet's, saved with torch.save) instead of random weights.

The file is read with torch.load(weights_only=True): tensors only, no code. Its classifier
(fc.*) is not used; BatchNorm's num_batches_tracked may be absent (torchvision's published
files lack it). The first convolution is adapted to a stream's channels: an RGB stream
(3 channels: flow_image, flow_strain) takes the kernel as it is, others the kernel averaged
over RGB and repeated per channel (as in Wang et al. 2016, temporal segment networks).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import torch

from mer.learn.model import MSCNN

EXPECTED = (
    "a torchvision resnet18 state_dict "
    "(torch.save(torchvision.models.resnet18().state_dict(), path))"
)


class InitWeightsError(ValueError):
    """The init_weights file cannot serve as ResNet-18 trunk weights."""


def read_resnet18_weights(path, reference: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The trunk weights of `path`, checked against a 3-channel trunk's state_dict `reference`;
    refused with an InitWeightsError naming the file and what it lacks."""
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as error:  # unreadable, not a torch file, or holding more than tensors
        raise InitWeightsError(
            f"train.init_weights {path}: cannot be read with torch.load(weights_only=True) "
            f"({type(error).__name__}: {error}); expected {EXPECTED}"
        ) from error
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise InitWeightsError(
            f"train.init_weights {path}: holds a {type(state).__name__}, not a mapping of "
            f"names to tensors; expected {EXPECTED}"
        )
    trunk = {k: v for k, v in state.items() if not k.startswith("fc.")}
    problems = [f"missing {k}" for k in reference if k not in trunk and "num_batches" not in k]
    problems += [f"unexpected {k}" for k in trunk if k not in reference]
    problems += [
        f"{k} has shape {tuple(v.shape)}, expected {tuple(reference[k].shape)}"
        for k, v in trunk.items()
        if k in reference and v.shape != reference[k].shape
    ]
    if problems:
        shown = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" * (len(problems) > 5))
        raise InitWeightsError(f"train.init_weights {path}: {shown}; expected {EXPECTED}")
    return trunk


def adapt_first_conv(kernel: torch.Tensor, in_channels: int) -> torch.Tensor:
    """An RGB kernel (64, 3, k, k) for `in_channels` input channels."""
    if in_channels == kernel.shape[1]:
        return kernel.clone()
    return kernel.mean(dim=1, keepdim=True).repeat(1, in_channels, 1, 1)


def initialise_trunks(model: MSCNN, path) -> None:
    """Load the file's weights into every trunk of `model`, in place."""
    reference = dict(next(iter(model.trunks.values())).state_dict())
    reference["conv1.weight"] = torch.empty(64, 3, 7, 7)
    weights = read_resnet18_weights(path, reference)
    for trunk in model.trunks.values():
        adapted = dict(weights)
        adapted["conv1.weight"] = adapt_first_conv(weights["conv1.weight"], trunk.conv1.in_channels)
        missing, _ = trunk.load_state_dict(adapted, strict=False)
        assert all("num_batches" in k for k in missing), missing


def file_digest(path) -> str:
    """sha256 of the weights file, for the fold's record."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
