"""MSCNN: one ResNet-18 trunk per stream, features concatenated, a dense layer, a classifier.

The softmax is applied by the loss (cross-entropy) and by `probabilities`; the classifier head
is a separate Linear layer so that it can be refitted on over-sampled dense-layer features.
Trunks start from random weights (weights=None): nothing can be downloaded here
(train.init_weights loads a local file instead: mer.learn.pretrained).

Beyond the method (train.fusion, train.stream_dropout): `late` fusion gives each stream its
own linear classifier on its trunk features (the head is then one Linear per stream) and
predicts the weighted average of their probabilities (weights fitted on validation subjects:
mer.learn.fusion); stream dropout zeroes whole streams' trunk features during training steps.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

# Stream name -> input channels (the arrays of a shard, see mer.learn.shards; flow_strain is
# computed from flow_uv by mer.learn.reader).
STREAM_CHANNELS = {
    "flow_image": 3,
    "flow_uv": 2,
    "flow_strain": 3,
    "apex_gray": 1,
    "masked_apex": 1,
}
MSCNN_STREAMS = ("flow_image", "apex_gray", "masked_apex")
FUSIONS = ("dense", "late")
TRUNK_FEATURES = 512  # ResNet-18 after global average pooling


def resnet18_trunk(in_channels: int) -> nn.Module:
    """torchvision ResNet-18 without its classifier, first convolution taking `in_channels`."""
    trunk = torchvision.models.resnet18(weights=None)
    trunk.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    trunk.fc = nn.Identity()  # 512 features after global average pooling
    return trunk


class MSCNN(nn.Module):
    def __init__(
        self,
        streams=MSCNN_STREAMS,
        n_classes: int = 5,
        dense_units: int = 256,
        fusion: str = "dense",
        stream_dropout: float = 0.0,
    ):
        super().__init__()
        unknown = [s for s in streams if s not in STREAM_CHANNELS]
        if unknown or not streams or fusion not in FUSIONS:
            raise ValueError(
                f"streams {list(streams)}: each must be one of {list(STREAM_CHANNELS)}; "
                f"fusion {fusion!r} one of {FUSIONS}"
            )
        self.streams, self.fusion, self.stream_dropout = tuple(streams), fusion, stream_dropout
        self.trunks = nn.ModuleDict({s: resnet18_trunk(STREAM_CHANNELS[s]) for s in self.streams})
        if fusion == "dense":
            joined = TRUNK_FEATURES * len(self.streams)
            self.dense = nn.Sequential(nn.Linear(joined, dense_units), nn.ReLU())
            self.head = nn.Linear(dense_units, n_classes)
        else:
            self.head = nn.ModuleDict({s: nn.Linear(TRUNK_FEATURES, n_classes) for s in streams})
            n = len(self.streams)
            self.register_buffer("fusion_weights", torch.full((n,), 1.0 / n))

    def features(self, batch: dict) -> torch.Tensor:
        """Dense-layer features (N, dense_units): what the over-sampler balances. With late
        fusion the streams' trunk features side by side (N, 512 x streams)."""
        outputs = [self.trunks[s](batch[s]) for s in self.streams]
        # Training steps only: not the BatchNorm re-estimation (no_grad), not evaluation.
        if self.stream_dropout and self.training and torch.is_grad_enabled():
            outputs = self._drop_streams(outputs)
        joined = torch.cat(outputs, dim=1)
        return self.dense(joined) if self.fusion == "dense" else joined

    def _drop_streams(self, outputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Zero each stream of each sample with probability stream_dropout; a sample that
        would lose every stream keeps one, drawn at random (ModDrop, Neverova et al. 2016)."""
        n, device = len(outputs[0]), outputs[0].device
        keep = torch.rand(n, len(outputs), device=device) >= self.stream_dropout
        rescued = torch.randint(len(outputs), (n,), device=device)
        keep[torch.arange(n, device=device), rescued] |= ~keep.any(dim=1)
        return [out * keep[:, i, None].to(out.dtype) for i, out in enumerate(outputs)]

    def stream_logits(self, features: torch.Tensor) -> torch.Tensor:
        """Late fusion: each stream's classifier on its trunk features, (N, streams, classes)."""
        chunks = features.split(TRUNK_FEATURES, dim=1)
        return torch.stack(
            [self.head[s](c) for s, c in zip(self.streams, chunks, strict=True)], dim=1
        )

    def fuse(self, stream_logits: torch.Tensor) -> torch.Tensor:
        """Log of the fusion-weighted average of the streams' probabilities (N, classes): a
        softmax of it gives those probabilities back."""
        probabilities = torch.softmax(stream_logits.float(), dim=2)
        fused = (probabilities * self.fusion_weights[None, :, None]).sum(dim=1)
        return torch.log(fused.clamp_min(1e-12))

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Logits (N, classes) of `features`' rows."""
        if self.fusion == "dense":
            return self.head(features)
        return self.fuse(self.stream_logits(features))

    def forward(self, batch: dict) -> torch.Tensor:
        return self.classify(self.features(batch))


def state_bytes(streams=MSCNN_STREAMS, dense_units: int = 256, n_classes: int = 5) -> int:
    """Bytes of an MSCNN's state_dict (weights and BatchNorm statistics): what one copy of the
    model takes in a checkpoint. Built on the meta device, so nothing is allocated."""
    with torch.device("meta"):
        model = MSCNN(streams, n_classes, dense_units)
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())
