"""One frame file: its number (from its name), its clip folder's listing, its decoding.

Frame files are found by the integer in their names (img46.jpg, reg_img46.jpg, 006_05562.jpg),
never by formatting names, because real datasets pad inconsistently.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np

FRAME_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
_LAST_INTEGER = re.compile(r"(\d+)(?!.*\d)")


class DataError(ValueError):
    """A dataset problem that stops the run; the message names the file and the fix."""


def frame_number(path: str | Path) -> int | None:
    """The last integer in a frame file's name, or None when it has none."""
    match = _LAST_INTEGER.search(Path(path).stem)
    return int(match.group(1)) if match else None


def list_frames(clip_dir: str | Path, pattern: str | None = None) -> dict[int, Path]:
    """Frame number -> file for every image in clip_dir (sorted numerically, not by name).

    `pattern`, a regular expression, keeps only files whose whole stem matches it
    (e.g. r"reg_img\\d+" for CASME II's cropped frames).
    """
    frames: dict[int, Path] = {}
    for entry in os.scandir(clip_dir):
        path = Path(entry.path)
        if path.suffix.lower() not in FRAME_SUFFIXES:
            continue
        if pattern is not None and not re.fullmatch(pattern, path.stem):
            continue
        number = frame_number(path)
        if number is None:
            continue
        if number in frames:
            raise DataError(
                f"{clip_dir}: frames {frames[number].name} and {path.name} both carry number "
                f"{number}; remove the duplicate so that each frame number names one image."
            )
        frames[number] = path
    return dict(sorted(frames.items()))


def frame_size(path: Path) -> tuple[int, int]:
    """(height, width) of a frame after decoding it fully; DataError saying what is wrong.

    Some OpenCV builds decode a truncated JPEG with only a warning (libjpeg fills the rest
    with gray), so JPEGs must also end with their end-of-image marker.
    """
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise DataError(f"frame {path} is empty (0 bytes)")
    is_jpeg = data[:2].tobytes() == b"\xff\xd8"
    if is_jpeg and not data[-64:].tobytes().rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise DataError(f"frame {path} is a truncated JPEG (no end-of-image marker)")
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise DataError(f"frame {path} cannot be decoded (corrupt or truncated image)")
    return image.shape


def read_gray(path: str | Path) -> np.ndarray:
    """One frame as uint8 gray; a clear error naming the file if it cannot be decoded."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise DataError(f"frame {path} is missing or empty; restore it from the dataset.")
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise DataError(f"frame {path} cannot be decoded (corrupt or truncated); restore it.")
    return image
