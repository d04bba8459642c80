"""HOOF: histograms of oriented optical flow (Chaudhry, Ravichandran, Hager & Vidal, CVPR 2009),
per spatial block of the onset->apex flow.

Each flow vector (u, v) (image axes: u to the right, v downwards) is binned by its angle from
the horizontal axis in left/right-symmetric form, theta = atan2(v, |u|) in [-pi/2, pi/2], and
counts its magnitude sqrt(u^2 + v^2): Chaudhry et al. bin "according to the primary angle from
the horizontal axis", so that a motion and its left/right mirror image (u -> -u) fall into the
same bin (their HOOF is invariant to the direction of motion along the horizontal axis). Bin b
of B covers -pi/2 + pi*b/B <= theta < -pi/2 + pi*(b+1)/B (theta = pi/2 goes into the last bin).
Each block's histogram is normalised to sum 1 (a block without any motion stays 0).

Feature layout of `hoof_features`, for blocks=(rows, columns) and B bins:
    length = rows * columns * B                            (25 blocks, 8 bins: 200)
block by block (row-major), within a block bins from upward (theta = -pi/2) to downward motion.
Mirroring the flow field left/right (x -> W-1-x, u -> -u) mirrors the block grid (column c ->
columns-1-c) and leaves every block's bins as they are.
"""

from __future__ import annotations

import numpy as np

from mer.methods.lbptop import block_histograms


def hoof_length(blocks: tuple[int, int] = (5, 5), bins: int = 8) -> int:
    """Length of a `hoof_features` vector: blocks x bins."""
    return blocks[0] * blocks[1] * bins


def hoof_bins(flow_uv: np.ndarray, bins: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(bin index 0..bins-1, magnitude) of every vector of a (H, W, 2) flow field."""
    if flow_uv.ndim != 3 or flow_uv.shape[2] != 2:
        raise ValueError(f"a flow field is (H, W, 2) (u, v); got shape {flow_uv.shape}")
    u, v = flow_uv[..., 0].astype(np.float64), flow_uv[..., 1].astype(np.float64)
    theta = np.arctan2(v, np.abs(u))  # [-pi/2, pi/2]: u and -u give the same angle
    index = np.floor((theta + np.pi / 2) / np.pi * bins).astype(np.int64)
    return np.clip(index, 0, bins - 1), np.hypot(u, v)


def hoof_features(
    flow_uv: np.ndarray, blocks: tuple[int, int] = (5, 5), bins: int = 8
) -> np.ndarray:
    """HOOF feature vector (float32) of a (H, W, 2) flow field; layout in the module doc."""
    if bins < 2:
        raise ValueError(f"HOOF needs at least 2 bins; got {bins}")
    index, magnitude = hoof_bins(flow_uv, bins)
    histograms = block_histograms(index[None], tuple(blocks), bins, weights=magnitude[None])
    return histograms.astype(np.float32).ravel()
