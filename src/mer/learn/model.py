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


class SmallMapConv2d(nn.Conv2d):
    """An nn.Conv2d (same weights, same state_dict, the same function up to rounding) that
    computes a map on which every output pixel's window covers the whole input as one matrix
    product over the taps that touch the input. At 32 px ResNet-18's layer3 and layer4 see
    2x2 and 1x1 maps, where a padded 3x3 convolution spends most of its work on the zeros of
    its padding; elsewhere it is the plain convolution."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        windows = self._whole_input_windows(x.shape[-2], x.shape[-1])
        if windows is None:
            return super().forward(x)
        y = _WindowProduct.apply(x, self.weight, windows)  # (N, pixels x out)
        if self.bias is not None:
            y = y + self.bias.repeat(len(windows))
        rows = (x.shape[-2] + 2 * self.padding[0] - self.kernel_size[0]) // self.stride[0] + 1
        return y.view(len(x), rows, -1, self.out_channels).permute(0, 3, 1, 2).contiguous()

    def _whole_input_windows(self, height: int, width: int) -> list | None:
        """Per output pixel (row-major), the kernel rows and columns that fall on the input;
        None where some window misses part of the input (the plain convolution then)."""
        if (
            self.groups != 1
            or self.dilation != (1, 1)
            or self.padding_mode != "zeros"
            or isinstance(self.padding, str)
        ):
            return None
        spans = []
        for size, k, s, p in zip(
            (height, width), self.kernel_size, self.stride, self.padding, strict=True
        ):
            starts = [p - o * s for o in range((size + 2 * p - k) // s + 1)]
            if not starts or any(a < 0 or a + size > k for a in starts):
                return None
            spans.append([slice(a, a + size) for a in starts])
        return [(r, c) for r in spans[0] for c in spans[1]]


class _WindowProduct(torch.autograd.Function):
    """x (N, C, H, W) times each window's taps of weight (O, C, k, k): (N, windows x O).
    Computed channels-last, where a window's taps and the gradient written back to them are
    runs of C contiguous numbers; the backward writes every window's taps into one zeroed
    gradient, rather than one weight-sized tensor per window as autograd of slices would."""

    @staticmethod
    def forward(ctx, x, weight, windows):
        out = weight.shape[0]
        channels_last = weight.permute(0, 2, 3, 1)  # (O, k, k, C)
        taps = torch.cat([channels_last[:, r, c, :].reshape(out, -1) for r, c in windows])
        flat = x.permute(0, 2, 3, 1).reshape(len(x), -1)  # (N, H x W x C)
        ctx.save_for_backward(flat, taps)
        ctx.windows, ctx.x_shape, ctx.weight_shape = windows, x.shape, weight.shape
        return flat @ taps.T

    @staticmethod
    def backward(ctx, grad):
        flat, taps = (t.to(grad.dtype) for t in ctx.saved_tensors)  # autocast: grad's dtype
        n, channels, height, width = ctx.x_shape
        out, _, kernel_rows, kernel_cols = ctx.weight_shape
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = (grad @ taps).view(n, height, width, channels).permute(0, 3, 1, 2)
        grad_taps = grad.T @ flat  # (windows x O, H x W x C)
        # Channels-last accumulation adds runs of C numbers, then transposes the gradient once;
        # a 1x1 input has one tap per window, cheaper to add in place than to transpose after.
        in_place = height * width == 1
        shape = ctx.weight_shape if in_place else (out, kernel_rows, kernel_cols, channels)
        grad_weight = grad.new_zeros(shape)
        channels_last = grad_weight.permute(0, 2, 3, 1) if in_place else grad_weight
        for block, (r, c) in zip(grad_taps.split(out), ctx.windows, strict=True):
            channels_last[:, r, c, :] += block.view(out, height, width, channels)
        if not in_place:
            grad_weight = grad_weight.permute(0, 3, 1, 2).contiguous()
        return grad_x, grad_weight, None


def resnet18_trunk(in_channels: int) -> nn.Module:
    """torchvision ResNet-18 without its classifier, first convolution taking `in_channels`;
    its convolutions compute small maps as matrix products (SmallMapConv2d)."""
    trunk = torchvision.models.resnet18(weights=None)
    trunk.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    trunk.fc = nn.Identity()  # 512 features after global average pooling
    for module in trunk.modules():
        if type(module) is nn.Conv2d:
            module.__class__ = SmallMapConv2d  # forward only: weights and init unchanged
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
