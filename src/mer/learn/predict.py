"""`mer predict`: one new clip through the preprocessing its checkpoint was trained with.

The checkpoint records the upstream parameters of its shards (evm, flow, masks, shards; see
mer.learn.split.shard_preprocessing). A clip goes through the same stage functions as the
workflow (mer.preprocess.evm.onset_apex, mer.preprocess.flow.onset_apex_flow,
mer.learn.augment.variant) and becomes a network input exactly as a test row of a shard does
(mer.learn.reader.variant_inputs), so the prediction equals the one the workflow made for that
clip. A checkpoint whose preprocessing cannot be reproduced is refused, with the reason.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from mer import __version__
from mer.data.frames import DataError
from mer.learn import augment, reader, train
from mer.preprocess import evm, flow
from mer.store import files

# Parameters each stage needs, by section of the recorded provenance.
REQUIRED_PARAMS = {
    "evm": ("alpha", "mode", "temporal_filter", "low_hz", "high_hz", "levels", "lambda_c", "size"),
    "flow": ("method", "params"),
    "masks": ("threshold", "normalise", "scale_px"),
    "shards": ("input_size",),
}


class PredictError(ValueError):
    """A checkpoint or clip that cannot be predicted; the message says why and what to do."""


def load_checkpoint(path) -> dict:
    """The checkpoint's tensors on the CPU; a damaged file raises ArtifactError naming it."""
    return files.load_checkpoint(path, map_location="cpu")


def preprocessing_params(checkpoint: dict, name: str = "checkpoint") -> dict:
    """The checkpoint's recorded preprocessing parameters, checked to be complete and runnable."""
    stored = checkpoint.get("preprocessing") or {}
    params = stored.get("params") or {}
    if not params:
        raise PredictError(
            f"{name} records no preprocessing parameters (trained before `mer predict` existed, "
            "or from shards that lack them), so its preprocessing cannot be reproduced; retrain "
            "it with this version of mer (delete the fold's folder and rerun snakemake)."
        )
    missing = [
        f"{section}.{key}"
        for section, keys in REQUIRED_PARAMS.items()
        for key in keys
        if key not in (params.get(section) or {})
    ]
    crop = params.get("evm", {}).get("crop") or {}
    if "enabled" not in crop or (crop["enabled"] and not {"size", "margin"} <= set(crop)):
        missing.append("evm.crop (enabled, size, margin)")
    if missing:
        raise PredictError(
            f"{name} lacks the preprocessing parameters {missing}; its preprocessing cannot be "
            "reproduced: retrain it with this version of mer."
        )
    try:
        flow.check_available(params["flow"]["method"])
        flow.resolve_params(params["flow"]["method"], **params["flow"]["params"])
    except ValueError as error:
        raise PredictError(f"{name}: {error}") from error
    return params


def version_warnings(checkpoint: dict) -> list[str]:
    """Versions that differ from the ones that made the shards: results may differ slightly."""
    stored = checkpoint.get("preprocessing") or {}
    here = {"mer_version": __version__, "opencv_version": cv2.__version__}
    return [
        f"the shards were made with {key.split('_')[0]} {stored[key]}, this is {value}: "
        "the prediction may differ slightly from the workflow's"
        for key, value in here.items()
        if stored.get(key) and stored[key] != value
    ]


def network_input(clip: np.ndarray, apex_index: int, fps: float, params: dict, sample: str):
    """Clip (T, H, W) uint8 onset..offset -> (the un-augmented variant, crop warning)."""
    evm_params, crop = params["evm"], params["evm"]["crop"]
    frames, _, crop_warning = evm.onset_apex(
        clip,
        apex_index,
        fps,
        size=int(evm_params["size"]) if evm_params["size"] else None,
        crop_size=int(crop["size"]) if crop["enabled"] else None,
        crop_margin=float(crop.get("margin", 0.15)),
        sample=sample,
        alpha=float(evm_params["alpha"]),
        low_hz=float(evm_params["low_hz"]),
        high_hz=float(evm_params["high_hz"]),
        temporal_filter=evm_params["temporal_filter"],
        levels=int(evm_params["levels"]) if evm_params["levels"] else None,
        lambda_c=float(evm_params["lambda_c"]),
        mode=evm_params["mode"],
    )
    flow_uv = flow.onset_apex_flow(
        frames["onset_magnified"],
        frames["apex_magnified"],
        method=params["flow"]["method"],
        **params["flow"]["params"],
    )
    masks = params["masks"]
    original = augment.variant(
        flow_uv,
        frames["apex_gray"],
        int(params["shards"]["input_size"]),
        threshold=int(masks["threshold"]),
        normalise=masks["normalise"],
        scale_px=float(masks["scale_px"]),
    )
    return original, crop_warning


def spot_apex(clip: np.ndarray, sample: str) -> int:
    """The apex index within the clip, by mer.data.spotting (imported only when needed)."""
    try:
        from mer.data.spotting import spot_apex as spot
    except ImportError as error:
        raise PredictError(
            f"{sample}: no --apex given and apex spotting (mer.data.spotting) is not available "
            f"({error}); give the apex frame number with --apex."
        ) from error
    return int(spot(clip, onset_index=0))


@torch.no_grad()
def class_probabilities(checkpoint: dict, variant: dict) -> np.ndarray:
    """Softmax of the checkpoint's model on one variant, in evaluation mode, on the CPU."""
    model = train.load_model(checkpoint)
    logits = model(reader.variant_inputs(variant))
    return torch.softmax(logits.float(), dim=1)[0].numpy()


def check_clip_length(n_frames: int, sample: str) -> None:
    if n_frames < evm.MIN_FRAMES:
        raise PredictError(
            f"{sample}: onset..offset holds {n_frames} frames; magnification needs at least "
            f"{evm.MIN_FRAMES}: give a longer clip or a later --offset."
        )


def frame_range(frames: dict, onset: int | None, offset: int | None, sample: str):
    """(onset, offset) frame numbers: the given ones, else the folder's first and last."""
    if not frames:
        raise DataError(f"{sample}: no numbered image frames in this folder.")
    onset = min(frames) if onset is None else onset
    offset = max(frames) if offset is None else offset
    if onset > offset:
        raise PredictError(f"{sample}: onset {onset} comes after offset {offset}.")
    return onset, offset


def predict_clip(
    frames_dir,
    checkpoint: dict,
    fps: float,
    onset: int | None = None,
    apex: int | None = None,
    offset: int | None = None,
    checkpoint_name: str = "checkpoint",
) -> dict:
    """Predict one clip folder (frame numbers as in its file names); returns a plain dict:
    onset, apex, offset, apex_spotted, predicted_label, probabilities (class -> p), warnings."""
    from mer.data.clips import load_clip
    from mer.data.frames import list_frames

    sample = str(frames_dir)
    params = preprocessing_params(checkpoint, checkpoint_name)
    onset, offset = frame_range(list_frames(frames_dir), onset, offset, sample)
    check_clip_length(offset - onset + 1, sample)
    clip = load_clip(frames_dir, onset, offset)
    apex_spotted = apex is None
    apex = onset + spot_apex(clip, sample) if apex_spotted else apex
    if not onset <= apex <= offset:
        raise PredictError(f"{sample}: apex {apex} lies outside onset..offset {onset}..{offset}.")
    variant, crop_warning = network_input(clip, apex - onset, fps, params, sample)
    probabilities = class_probabilities(checkpoint, variant)
    classes = list(checkpoint["classes"])
    return {
        "clip": sample,
        "onset": onset,
        "apex": apex,
        "offset": offset,
        "apex_spotted": apex_spotted,
        "predicted_label": classes[int(probabilities.argmax())],
        "probabilities": {c: float(p) for c, p in zip(classes, probabilities, strict=True)},
        "warnings": version_warnings(checkpoint) + ([crop_warning] if crop_warning else []),
    }
