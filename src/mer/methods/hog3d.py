"""HOG3D: histograms of 3D (x, y, t) gradient orientations over spatio-temporal cells, after
Polikovsky, Kameda & Ohta, "Facial micro-expressions recognition using high speed camera and
3D-gradient descriptor" (ICDP 2009).

The clip's gradients (Gx, Gy, Gt) are central differences (numpy.gradient) of the gray levels.
Cells: a blocks=(rows, columns) grid over the frame (the original used 12 facial regions placed
on landmarks; we have no landmarks, so blocks stand in for them) times `segments` equal
temporal segments of the clip. Per cell two magnitude-weighted orientation histograms:

- spatial: the xy-angle atan2(Gy, Gx) in `bins_xy` bins over [-pi, pi), weighted by |Gxy|;
- temporal: the xy-angle jointly with the elevation toward t, atan2(Gt, |Gxy|) in `bins_t`
  bins over [-pi/2, pi/2], weighted by |Gt|, so that it is zero where nothing changes in time
  (a static clip) and it tells a motion from its reverse (the elevation's sign pairs with the
  edge's xy-angle: a bright blob moving right brightens at its right edge).

Each cell's two histograms are normalised together, by the sum of |Gxy| + |Gt| over the cell:
the temporal part's share says how much of the cell's gradient energy is temporal.

Feature layout of `hog3d_features`:
    length = rows * columns * segments * (bins_xy + bins_xy * bins_t)
ordered by temporal segment, then block (row-major), then the bins_xy spatial bins and the
bins_xy x bins_t temporal bins (xy-angle major). Defaults (5x5, 2 segments, 8, 4): 2000.
"""

from __future__ import annotations

import numpy as np

from mer.methods.lbptop import block_of_pixel


def hog3d_length(
    blocks: tuple[int, int] = (5, 5), segments: int = 2, bins_xy: int = 8, bins_t: int = 4
) -> int:
    """Length of a `hog3d_features` vector."""
    return blocks[0] * blocks[1] * segments * bins_xy * (1 + bins_t)


def _angle_bin(angle: np.ndarray, low: float, span: float, bins: int) -> np.ndarray:
    index = np.floor((angle - low) / span * bins).astype(np.int64)
    return np.clip(index, 0, bins - 1)


def hog3d_features(
    clip: np.ndarray,
    blocks: tuple[int, int] = (5, 5),
    segments: int = 2,
    bins_xy: int = 8,
    bins_t: int = 4,
) -> np.ndarray:
    """HOG3D feature vector (float32) of a (T, H, W) gray clip; layout in the module doc."""
    if clip.ndim != 3 or clip.shape[0] < max(2, segments):
        raise ValueError(
            f"a clip is (T, H, W) gray with at least max(2, segments={segments}) frames; "
            f"got shape {clip.shape}"
        )
    grad_t, grad_y, grad_x = np.gradient(clip.astype(np.float64))
    magnitude_xy = np.hypot(grad_x, grad_y)
    xy_bin = _angle_bin(np.arctan2(grad_y, grad_x), -np.pi, 2 * np.pi, bins_xy)
    elevation_bin = _angle_bin(np.arctan2(grad_t, magnitude_xy), -np.pi / 2, np.pi, bins_t)
    n_frames, height, width = clip.shape
    n_blocks = blocks[0] * blocks[1]
    segment = np.arange(n_frames) * segments // n_frames
    cell = segment[:, None, None] * n_blocks + block_of_pixel(height, width, tuple(blocks))[None]
    n_cells, per_cell = segments * n_blocks, bins_xy * (1 + bins_t)
    spatial_index = cell * per_cell + xy_bin
    temporal_index = cell * per_cell + bins_xy + xy_bin * bins_t + elevation_bin
    histograms = np.bincount(
        np.concatenate([spatial_index.ravel(), temporal_index.ravel()]),
        weights=np.concatenate([magnitude_xy.ravel(), np.abs(grad_t).ravel()]),
        minlength=n_cells * per_cell,
    ).reshape(n_cells, per_cell)
    totals = histograms.sum(axis=1, keepdims=True)
    return (histograms / np.where(totals > 0, totals, 1)).astype(np.float32).ravel()
