"""Apex spotting: the frame of largest facial change in an onset..offset clip.

SMIC gives onset and offset only, so its apex is spotted from the frames (docs/datasets.md).

Method `frame_difference` (the default), on the frames from the onset to the last (offset)
frame, inside the face box:
0. frames larger than `work_px` on their longer side are shrunk to it by pixel-area averaging
   (a micro-expression moves whole facial regions; full resolution only costs time);
1. each frame is divided by its mean gray level (illumination flicker is global);
2. smoothed over time (a centred moving average of `smooth_frames` frames) and in space (a
   Gaussian of `blur_px`), which averages sensor noise away before differences are squared;
3. compared with the straight line between the onset and the offset frame, pixel by pixel:
   score(t) = mean((I_t - ((1 - w) I_onset + w I_offset))^2), w = (t - onset) / (T - 1 - onset).
The apex is the argmax of the score. A micro-expression leaves the neutral face and returns to
it, so it shows as a bump above that line, while a slow head drift that grows steadily over the
clip is a straight line between the two ends and cancels; a plain difference to the onset
frame follows the drift to the last frame (measured on mer.data.synth clips: see the tests).

Method `onset_difference`: the same smoothing, compared with the onset frame only, for clips
that do not return to neutral at their last frame.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

METHODS = ("frame_difference", "onset_difference")


def motion_curve(
    clip: np.ndarray,
    onset_index: int = 0,
    method: str = "frame_difference",
    face_box: tuple[int, int, int, int] | None = None,
    smooth_frames: int = 5,
    blur_px: float = 1.5,
    work_px: int = 128,
) -> np.ndarray:
    """Per-frame change score (T,) whose argmax is the spotted apex; see the module doc.

    `face_box` (top, left, bottom, right) in pixels restricts the comparison to the face.
    Frames before onset_index score -inf.
    """
    clip = np.asarray(clip)
    if clip.ndim != 3 or len(clip) == 0:
        raise ValueError(f"apex spotting needs a (T, H, W) gray clip, got shape {clip.shape}")
    if method not in METHODS:
        raise ValueError(f"apex spotting method must be one of {list(METHODS)}, not {method!r}")
    if not 0 <= onset_index < len(clip):
        raise ValueError(f"onset_index {onset_index} is outside the clip's {len(clip)} frames")
    if face_box is not None:
        top, left, bottom, right = (int(v) for v in face_box)
        clip = clip[:, top:bottom, left:right]
        if clip.size == 0:
            raise ValueError(f"face_box {face_box} holds no pixels of the clip")
    frames = clip[onset_index:].astype(np.float32)
    scale = work_px / max(frames.shape[1:])
    if scale < 1:
        size = (max(1, round(frames.shape[2] * scale)), max(1, round(frames.shape[1] * scale)))
        frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
    frames /= np.maximum(frames.mean(axis=(1, 2), keepdims=True), 1e-6)
    frames = ndimage.uniform_filter1d(
        frames, size=max(1, min(smooth_frames, len(frames))), axis=0, mode="nearest"
    )
    frames = ndimage.gaussian_filter(frames, sigma=(0, blur_px, blur_px))
    if method == "frame_difference":
        weight = np.linspace(0.0, 1.0, len(frames), dtype=np.float32)[:, None, None]
        reference = (1 - weight) * frames[0] + weight * frames[-1]
    else:
        reference = frames[0]
    score = np.full(len(clip), -np.inf)
    score[onset_index:] = ((frames - reference) ** 2).mean(axis=(1, 2))
    return score


def spot_apex(
    clip: np.ndarray,
    onset_index: int = 0,
    method: str = "frame_difference",
    face_box=None,
    smooth_frames: int = 5,
    blur_px: float = 1.5,
    work_px: int = 128,
) -> int:
    """The apex as an index into `clip` (T, H, W) uint8 gray holding the onset..offset frames."""
    curve = motion_curve(clip, onset_index, method, face_box, smooth_frames, blur_px, work_px)
    return int(np.argmax(curve))
