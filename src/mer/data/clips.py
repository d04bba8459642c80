"""Reading a clip's frames from disk: onset..offset, gray, validated, at the working size."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mer.data.frames import DataError, list_frames, read_gray


def load_clip(frames_dir: str | Path, first: int, last: int) -> np.ndarray:
    """Frames first..last (numbers from the file names) as (T, H, W) uint8, one size for all."""
    frames = list_frames(frames_dir)
    missing = [n for n in range(first, last + 1) if n not in frames]
    if missing:
        raise DataError(f"{frames_dir}: frames {missing[:5]} of {first}..{last} are missing.")
    images = [read_gray(frames[n]) for n in range(first, last + 1)]
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        raise DataError(
            f"{frames_dir}: frames differ in size {sorted(shapes)}; one clip must "
            "have one frame size (re-export the clip)."
        )
    return np.stack(images)


def resize_clip(clip: np.ndarray, size: int | None) -> np.ndarray:
    """(T, H, W) -> (T, size, size); None keeps the clip. INTER_AREA: right for shrinking."""
    if size is None or clip.shape[1:3] == (size, size):
        return clip
    return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in clip])
