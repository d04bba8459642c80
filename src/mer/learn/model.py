"""MSCNN: one ResNet-18 trunk per stream, features concatenated, a dense layer, a classifier.

The softmax is applied by the loss (cross-entropy) and by `probabilities`; the classifier head
is a separate Linear layer so that it can be refitted on over-sampled dense-layer features.
Trunks start from random weights (weights=None): nothing can be downloaded here.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

# Stream name -> input channels (the arrays of a shard, see mer.learn.shards).
STREAM_CHANNELS = {"flow_image": 3, "flow_uv": 2, "apex_gray": 1, "masked_apex": 1}
MSCNN_STREAMS = ("flow_image", "apex_gray", "masked_apex")


def resnet18_trunk(in_channels: int) -> nn.Module:
    """torchvision ResNet-18 without its classifier, first convolution taking `in_channels`."""
    trunk = torchvision.models.resnet18(weights=None)
    trunk.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    trunk.fc = nn.Identity()  # 512 features after global average pooling
    return trunk


class MSCNN(nn.Module):
    def __init__(self, streams=MSCNN_STREAMS, n_classes: int = 5, dense_units: int = 256):
        super().__init__()
        unknown = [s for s in streams if s not in STREAM_CHANNELS]
        if unknown or not streams:
            raise ValueError(
                f"streams {list(streams)}: each must be one of {list(STREAM_CHANNELS)}"
            )
        self.streams = tuple(streams)
        self.trunks = nn.ModuleDict({s: resnet18_trunk(STREAM_CHANNELS[s]) for s in self.streams})
        self.dense = nn.Sequential(nn.Linear(512 * len(self.streams), dense_units), nn.ReLU())
        self.head = nn.Linear(dense_units, n_classes)

    def features(self, batch: dict) -> torch.Tensor:
        """Dense-layer features (N, dense_units): what the over-sampler balances."""
        joined = torch.cat([self.trunks[s](batch[s]) for s in self.streams], dim=1)
        return self.dense(joined)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.head(self.features(batch))


def state_bytes(streams=MSCNN_STREAMS, dense_units: int = 256, n_classes: int = 5) -> int:
    """Bytes of an MSCNN's state_dict (weights and BatchNorm statistics): what one copy of the
    model takes in a checkpoint. Built on the meta device, so nothing is allocated."""
    with torch.device("meta"):
        model = MSCNN(streams, n_classes, dense_units)
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())
