"""Stage 2 (optional): face crop of uncropped clips (SAMM, CASME II raw) to the working size.

One square box per clip, found on the onset frame by OpenCV's frontal-face Haar cascade and
used for every frame, so the crop adds no motion of its own between onset and apex. When no
face is found the clip gets a centre crop and a warning that names the sample.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from mer.data.frames import DataError

CASCADE_FILE = "haarcascade_frontalface_default.xml"
CASCADE_ENV = "MER_HAAR_CASCADE"
log = logging.getLogger(__name__)


def find_cascade(path: str | Path | None = None) -> Path | None:
    """The frontal-face Haar cascade file, or None if this installation has none.

    Looked for in order: `path`, $MER_HAAR_CASCADE, OpenCV's bundled copy (cv2.data, which the
    OpenCV 4 wheels have and the OpenCV 5 wheels dropped), then the copies that conda-forge's
    opencv and Debian's opencv-data install under share/opencv4/haarcascades.
    """
    for given in (path, os.environ.get(CASCADE_ENV)):
        if given:
            if not Path(given).is_file():
                raise DataError(f"Haar cascade {given} does not exist.")
            return Path(given)
    candidates = []
    bundled = getattr(getattr(cv2, "data", None), "haarcascades", "")
    if bundled:
        candidates.append(Path(bundled) / CASCADE_FILE)
    for share in (Path(sys.prefix) / "share", Path("/usr/local/share"), Path("/usr/share")):
        candidates += [
            share / name / "haarcascades" / CASCADE_FILE for name in ("opencv4", "opencv")
        ]
    return next((c for c in candidates if c.is_file()), None)


@functools.lru_cache(maxsize=4)
def _classifier(path: str) -> cv2.CascadeClassifier:
    classifier = cv2.CascadeClassifier(path)
    if classifier.empty():
        raise DataError(f"{path} is not a Haar cascade that OpenCV {cv2.__version__} can read.")
    return classifier


def _square(cx: float, cy: float, side: float, height: int, width: int) -> tuple[int, ...]:
    """Square (x, y, side, side) centred near (cx, cy), shifted and shrunk to fit the frame."""
    side = int(round(min(side, height, width)))
    x = min(max(int(round(cx - side / 2)), 0), width - side)
    y = min(max(int(round(cy - side / 2)), 0), height - side)
    return (x, y, side, side)


def centre_box(shape: tuple[int, ...], fraction: float = 1.0) -> tuple[int, ...]:
    """The largest centred square of a (H, W[, C]) frame, scaled by `fraction`."""
    height, width = shape[:2]
    return _square(width / 2, height / 2, min(height, width) * fraction, height, width)


def face_box(
    frame: np.ndarray, margin: float = 0.15, cascade: str | Path | None = None
) -> tuple[int, ...] | None:
    """Square (x, y, w, h) around the largest frontal face, or None when none is found.

    The detected square grows by `margin` times its side on every side and is then shifted
    (and if need be shrunk) to lie inside the frame.
    """
    path = find_cascade(cascade)
    if path is None:
        raise DataError(
            f"OpenCV {cv2.__version__} has no {CASCADE_FILE} (the OpenCV 5 wheels ship none). "
            "Install one: pip install 'opencv-contrib-python-headless<5', or Debian's "
            f"opencv-data, or point ${CASCADE_ENV} at the file; or set dataset.crop.enabled: "
            "false."
        )
    gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    gray = np.ascontiguousarray(gray, dtype=np.uint8)
    height, width = gray.shape
    smallest = max(24, min(height, width) // 8)
    faces = _classifier(str(path)).detectMultiScale(
        gray, scaleFactor=1.1, minNeighbors=5, minSize=(smallest, smallest)
    )
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces.tolist(), key=lambda face: face[2] * face[3])
    side = max(w, h) * (1 + 2 * margin)
    return _square(x + w / 2, y + h / 2, side, height, width)


def clip_box(
    onset: np.ndarray, margin: float = 0.15, sample: str = "", cascade: str | Path | None = None
) -> tuple[tuple[int, ...], str | None]:
    """The crop box of a whole clip, from its onset frame, and a warning if no face was found.

    Without a face the box is the centred square and the warning (also logged) names the
    sample, so that the report can list the clips to check by eye.
    """
    box = face_box(onset, margin, cascade)
    if box is not None:
        return box, None
    box = centre_box(onset.shape)
    warning = (
        f"{sample or 'clip'}: no face found on the onset frame; using the centre crop {box} "
        "(x, y, w, h). Check the clip, or crop it by hand."
    )
    log.warning(warning)
    return box, warning


def crop_clip(frames: np.ndarray, box: tuple[int, ...], size: int) -> np.ndarray:
    """(T, H, W[, C]) frames -> (T, size, size[, C]): the same box for every frame, resized."""
    x, y, w, h = (int(v) for v in box)
    height, width = frames.shape[1:3]
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise ValueError(f"crop box {box} does not lie inside the {width}x{height} frames")
    # INTER_AREA averages when shrinking (no aliasing); cubic when enlarging.
    interpolation = cv2.INTER_AREA if w >= size else cv2.INTER_CUBIC
    return np.stack(
        [
            cv2.resize(frame[y : y + h, x : x + w], (size, size), interpolation=interpolation)
            for frame in frames
        ]
    ).astype(frames.dtype, copy=False)


def crop_enabled(setting: bool | str, loader: str, layout: str = "cropped") -> bool:
    """dataset.crop.enabled: true, false, or 'auto' = on for SAMM, CASME II raw, SMIC-HS and
    the MEGC 2019 composite (whose SAMM frames are uncropped), off otherwise."""
    if setting == "auto":
        return loader in ("samm", "smic", "megc2019") or (loader == "casme2" and layout == "raw")
    return bool(setting)
