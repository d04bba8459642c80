"""The torch Dataset that training reads: subjects selected from per-subject shards.

Kept apart from mer.learn.shards so that writing shards does not pay for importing torch.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from mer.learn.shards import ShardError, open_shard, read_shard

# Streams stored as uint8 images, scaled to 0..1 by the fixed factor 1/255; flow_uv is in px.
UINT8_STREAMS = ("flow_image", "apex_gray", "masked_apex")


def flow_strain(flow_uv: torch.Tensor) -> torch.Tensor:
    """(..., 2, H, W) flow in px -> (..., 3, H, W): u, v and the optical strain magnitude.

    The strain tensor of the displacement: e_xx = du/dx, e_yy = dv/dy,
    e_xy = (du/dy + dv/dx) / 2; magnitude sqrt(e_xx² + e_yy² + 2 e_xy²) (Shreve et al. 2011,
    as mer.methods.elrcn_inputs.optical_strain). Central differences (one-sided at the border),
    px per px; computed from the shard's flow_uv, so the shards need no new array.
    """
    du_dy, du_dx = torch.gradient(flow_uv[..., 0, :, :], dim=(-2, -1))
    dv_dy, dv_dx = torch.gradient(flow_uv[..., 1, :, :], dim=(-2, -1))
    shear = 0.5 * (du_dy + dv_dx)
    strain = torch.sqrt(du_dx**2 + dv_dy**2 + 2 * shear**2)
    return torch.cat([flow_uv, strain.unsqueeze(-3)], dim=-3).contiguous()


def network_input(stream: str, stored: torch.Tensor) -> torch.Tensor:
    """A stream's stored (C, H, W) tensor as the network reads it."""
    return stored.float() / 255.0 if stream in UINT8_STREAMS else stored


def variant_inputs(variant: dict) -> dict[str, torch.Tensor]:
    """One un-augmented variant (mer.learn.augment.variant) -> a batch of one, as a test row of
    ShardDataset: channels first, the same scaling."""
    stored = {
        "flow_image": torch.from_numpy(variant["flow_image"]).permute(2, 0, 1),
        "flow_uv": torch.from_numpy(variant["flow_uv"]).permute(2, 0, 1),
        "apex_gray": torch.from_numpy(variant["apex_gray"]).unsqueeze(0),
        "masked_apex": torch.from_numpy(variant["masked_apex"]).unsqueeze(0),
    }
    stored["flow_strain"] = flow_strain(stored["flow_uv"].float())
    return {s: network_input(s, t.contiguous()).unsqueeze(0) for s, t in stored.items()}


class ShardDataset(torch.utils.data.Dataset):
    """Samples of the given subjects from a list of shards, held in memory as tensors.

    `subjects` is the set of subjects to serve; a shard of any other subject is never opened
    and every row is checked again, so an excluded (held-out) subject cannot leak in.
    Images are scaled to 0..1 by the fixed factor 1/255: no statistic of any data is used.
    """

    def __init__(self, shard_paths, subjects, augmentations: set[int] | None = None):
        self.subjects = set(subjects)
        parts = []
        for path in shard_paths:
            with open_shard(path) as shard:
                if shard.attrs.get("subject") not in self.subjects:
                    continue
            part = read_shard(path, augmentations)
            if not set(part["subject"]) <= self.subjects:
                raise ShardError(
                    f"shard {path} holds rows of subjects "
                    f"{sorted(set(part['subject']) - self.subjects)} not asked for"
                )
            parts.append(part)
        if not parts:
            raise ShardError(
                f"no shard among {len(shard_paths)} holds subjects {sorted(self.subjects)}"
            )
        self.classes = json.loads(parts[0]["attrs"]["classes"])

        def cat(name):
            return np.concatenate([p[name] for p in parts])

        self.flow_image = torch.from_numpy(cat("flow_image")).permute(0, 3, 1, 2).contiguous()
        self.flow_uv = torch.from_numpy(cat("flow_uv")).permute(0, 3, 1, 2).contiguous()
        self.flow_strain = flow_strain(self.flow_uv)
        self.apex_gray = torch.from_numpy(cat("apex_gray")).unsqueeze(1)
        self.masked_apex = torch.from_numpy(cat("masked_apex")).unsqueeze(1)
        self.labels = torch.from_numpy(cat("label").astype(np.int64))
        self.augmentation = cat("augmentation")
        self.sample = cat("sample")
        self.subject = cat("subject")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {
            "flow_image": network_input("flow_image", self.flow_image[index]),
            "flow_uv": network_input("flow_uv", self.flow_uv[index]),
            "flow_strain": network_input("flow_strain", self.flow_strain[index]),
            "apex_gray": network_input("apex_gray", self.apex_gray[index]),
            "masked_apex": network_input("masked_apex", self.masked_apex[index]),
            "label": self.labels[index],
            "index": index,
        }
