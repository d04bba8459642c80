"""The evm, flow and masks stages on one clip's files: read the inputs, compute, write the
artifact atomically, return a one-line summary.

The one-clip verbs (`mer evm`, `mer flow`, `mer masks`) call these once. The workflow's jobs
call them for every clip of a subject in one process (`mer evm-clips`, ...): a job then pays
Python's and OpenCV's start-up once per subject instead of once per clip and stage, which was
most of the per-clip cost (docs/preprocessing.md). Frames are decoded once, by the evm stage;
flow and masks read its onset/apex frames from the evm artifact.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mer.data import clips
from mer.preprocess import evm, flow, masks, preview
from mer.store import files


def evm_artifact(
    frames_dir: str,
    out: str | Path,
    onset: int,
    apex: int,
    offset: int,
    fps: float,
    size: int | None = None,
    crop_size: int | None = None,
    crop_margin: float = 0.15,
    **magnify_params,
) -> str:
    """Magnify frames onset..offset of a clip folder; write onset/apex (gray, magnified)."""
    clip = clips.load_clip(frames_dir, onset, offset)
    try:
        frames, box, crop_warning = evm.onset_apex(
            clip,
            apex - onset,
            fps,
            size=size,
            crop_size=crop_size,
            crop_margin=crop_margin,
            sample=frames_dir,
            **magnify_params,
        )
    except ValueError as error:  # e.g. a clip too short for the band: name the sample's frames
        raise ValueError(f"{frames_dir} (frames {onset}..{offset}): {error}") from error
    # Uncompressed: float32 frames shrink by ~18 % at ~0.1 s per clip, more than its EVM.
    files.save_npz(
        out, compress=False, **frames, fps=np.float32(fps), crop_warning=np.str_(crop_warning)
    )
    face = f", face box (x, y, w, h) {box}" if box is not None else ""
    return f"{frames_dir}: {len(clip)} frames {frames['onset_gray'].shape}{face} -> {out}"


def flow_artifact(evm_path: str | Path, out: str | Path, method: str, method_params: dict) -> str:
    """Dense onset->apex flow of the magnified frames of an evm artifact."""
    frames = files.load_npz(evm_path, "onset_magnified", "apex_magnified")
    try:
        flow_uv = flow.onset_apex_flow(
            frames["onset_magnified"], frames["apex_magnified"], method=method, **method_params
        )
    except ValueError as error:  # name the sample: its EVM file is the input
        raise ValueError(f"{evm_path}: {error}; no flow written to {out}") from error
    files.save_npz(out, compress=False, flow_uv=flow_uv)  # float32: ~11 % smaller compressed
    magnitude = np.sqrt((flow_uv**2).sum(-1))
    return (
        f"{evm_path}: flow {method}, mean |uv| {magnitude.mean():.3f} px, "
        f"max {magnitude.max():.3f} px -> {out}"
    )


def masks_artifact(
    evm_path: str | Path,
    flow_path: str | Path,
    out: str | Path,
    preview_path: str | Path,
    threshold: int = 50,
    normalise: str = "per_sample",
    scale_px: float = 1.0,
    label: str = "",
) -> str:
    """Flow image, motion mask and masked apex of one sample, and its preview strip (PNG)."""
    frames = files.load_npz(evm_path, "onset_gray", "apex_gray", "apex_magnified")
    flow_uv = files.load_npz(flow_path, "flow_uv")["flow_uv"]
    try:
        flow_bgr = masks.flow_image(flow_uv, normalise=normalise, scale_px=scale_px)
    except ValueError as error:  # e.g. a non-finite field: name the sample's flow file
        raise ValueError(f"{flow_path}: {error}") from error
    mask = masks.motion_mask(flow_bgr, threshold=threshold)
    masked = masks.masked_apex(frames["apex_gray"], mask)
    files.save_npz(
        out, flow_image=flow_bgr, mask=mask, apex_gray=frames["apex_gray"], masked_apex=masked
    )
    strip = preview.sample_strip(
        {
            "onset": frames["onset_gray"],
            "apex": frames["apex_gray"],
            "magnified apex": evm.to_uint8(frames["apex_magnified"]),
            "flow image": flow_bgr,
            "mask": mask,
            "masked apex": masked,
        },
        label=f"{label}  mask {mask.mean():.0%}",
    )
    with files.atomic_path(preview_path) as tmp:
        cv2.imwrite(str(tmp), strip)
    return f"{flow_path}: mask covers {mask.mean():.1%} -> {out}"
