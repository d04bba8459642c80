"""How a fold computes its training steps: the autocast dtype and the memory format.

Measured by benchmarks/bench_train.py (docs/training.md, "Speed"): on a CPU with native
bfloat16 (AVX512-BF16 or AMX) the 3-stream step at 64 px runs 1.1-1.5x faster (noisy machine)
with bf16 autocast and channels_last tensors than in fp32, but at 32 px it is slower (0.86x:
the casts outweigh the small convolutions); channels_last alone gains nothing in fp32, and
emulated bf16 is slower. So "auto" takes bf16 only with native bf16 and inputs >= 64 px.
Evaluation (BatchNorm statistics aside) always runs in fp32: validation, the features the
over-sampler sees and the test predictions do not depend on this setting's rounding.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from mer import compute

PRECISIONS = ("auto", "bf16", "fp32")
BF16_MIN_PX = 64  # "auto" below this input size stays fp32 (measured slower in bf16)


@dataclass(frozen=True)
class Precision:
    name: str  # what the fold ran: bf16, fp16 (CUDA AMP) or fp32
    dtype: torch.dtype | None  # autocast dtype; None = fp32
    channels_last: bool
    device_type: str

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    @property
    def scales_loss(self) -> bool:
        """fp16 needs a GradScaler against underflowing gradients; bf16 has fp32's range."""
        return self.dtype == torch.float16

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def inputs(self, batch: dict, streams, device) -> dict:
        moved = to_device(batch, streams, device)
        if self.channels_last:
            return {s: x.contiguous(memory_format=torch.channels_last) for s, x in moved.items()}
        return moved


def to_device(batch: dict, streams, device) -> dict:
    """The batch's stream tensors on `device`, as stored (fp32, default memory format)."""
    return {s: batch[s].to(device, non_blocking=True) for s in streams}


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (oneDNN's own check)."""
    if not torch.backends.mkldnn.is_available():
        return False
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve(name: str, device: torch.device, input_px: int) -> Precision:
    """The precision a setting means on a device: "auto" is fp16 AMP on CUDA, fp32 on a CPU in
    portable mode, and in fast mode bf16 with channels_last on a CPU with native bf16 for
    inputs of at least BF16_MIN_PX, else fp32."""
    if name not in PRECISIONS:
        raise ValueError(f"precision {name!r}: must be one of {PRECISIONS}")
    portable_cpu = device.type == "cpu" and compute.mode() == "portable"
    if name == "bf16" and portable_cpu:
        raise ValueError(
            "train.precision bf16 on the CPU needs compute mode fast (config `compute: fast`): "
            "bf16 kernels differ between CPUs, so portable mode computes in fp32"
        )
    if name == "fp32" or portable_cpu:
        return Precision("fp32", None, False, device.type)
    if device.type == "cuda":
        if name == "bf16":
            return Precision("bf16", torch.bfloat16, True, "cuda")
        return Precision("fp16", torch.float16, True, "cuda")
    if name == "bf16" or (native_bf16() and input_px >= BF16_MIN_PX):
        return Precision("bf16", torch.bfloat16, True, device.type)
    return Precision("fp32", None, False, device.type)
