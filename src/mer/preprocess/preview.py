"""Preview images of the preprocessing, one strip per sample and a contact sheet per dataset."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

PANEL_TITLES = ("onset", "apex", "magnified apex", "flow image", "mask", "masked apex")


def _panel(image: np.ndarray, title: str, size: int) -> np.ndarray:
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_NEAREST)
    banner = np.full((14, size, 3), 255, np.uint8)
    cv2.putText(banner, title, (2, 11), cv2.FONT_HERSHEY_PLAIN, 0.8, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([banner, image])


def sample_strip(panels: dict[str, np.ndarray], label: str, size: int = 128) -> np.ndarray:
    """The six stages of one sample side by side (BGR uint8), captioned with `label`."""
    row = np.hstack([_panel(panels[t], t, size) for t in PANEL_TITLES])
    caption = np.full((16, row.shape[1], 3), 235, np.uint8)
    cv2.putText(caption, label, (3, 12), cv2.FONT_HERSHEY_PLAIN, 0.9, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([caption, row])


def contact_sheet(
    strip_paths: list[str | Path], columns: int = 2, scale: float = 0.5
) -> np.ndarray:
    """All sample strips, shrunk and tiled in `columns` columns (BGR uint8)."""
    strips = []
    for path in strip_paths:
        strip = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if strip is None:
            raise ValueError(f"preview {path} cannot be read; rerun its masks job.")
        strips.append(cv2.resize(strip, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
    height = max(s.shape[0] for s in strips)
    width = max(s.shape[1] for s in strips)
    strips += [np.full((height, width, 3), 255, np.uint8)] * (-len(strips) % columns)
    padded = [
        cv2.copyMakeBorder(
            s,
            0,
            height - s.shape[0],
            0,
            width - s.shape[1],
            cv2.BORDER_CONSTANT,
            value=(255, 255, 255),
        )
        for s in strips
    ]
    rows = [np.hstack(padded[i : i + columns]) for i in range(0, len(padded), columns)]
    return np.vstack(rows)
