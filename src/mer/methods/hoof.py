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

HOOF over the frame sequence (`hoof_sequence_features`, the method `hoof_sequence`): the
original describes every frame of a clip by the HOOF of its flow. Here the clip's
frame-to-frame flow (mer.methods.fdm.clip_flows: DIS by default, each pair's median flow
removed as for FDM) is binned the same way and histogrammed per block and per temporal segment
(the frame pairs split evenly into `segments`, pooled within a segment):
    length = segments * rows * columns * B                 (3 segments: 600)
segment by segment, then as above. Pooling per segment stands in for the original's
time-series model (a linear dynamical system per clip compared with Binet-Cauchy kernels),
so that the shared linear SVM can classify it.
"""

from __future__ import annotations

import numpy as np

from mer.methods.fdm import DEFAULT_FLOW_METHOD, clip_flows, even_split
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


def hoof_sequence_length(blocks: tuple[int, int] = (5, 5), bins: int = 8, segments: int = 3) -> int:
    """Length of a `hoof_sequence_features` vector: segments x blocks x bins."""
    return segments * hoof_length(blocks, bins)


def hoof_sequence_histograms(
    flows: np.ndarray, blocks: tuple[int, int] = (5, 5), bins: int = 8, segments: int = 3
) -> np.ndarray:
    """(segments, blocks, bins) HOOF of a flow volume (T', H, W, 2), pooled per segment of the
    T' frame pairs; each block of each segment normalised to sum 1 (still: 0)."""
    if bins < 2:
        raise ValueError(f"HOOF needs at least 2 bins; got {bins}")
    if flows.ndim != 4 or not 1 <= segments <= len(flows):
        raise ValueError(
            f"cannot split a flow volume of shape {flows.shape} into {segments} temporal "
            f"segments: the clip needs at least segments + 1 = {segments + 1} frames"
        )
    # Binning is per vector: the frame pairs stacked as rows of one field, then split back.
    index, magnitude = (
        x.reshape(flows.shape[:3]) for x in hoof_bins(flows.reshape(-1, *flows.shape[2:]), bins)
    )
    bounds = even_split(len(flows), segments)
    return np.stack(
        [
            block_histograms(index[a:b], tuple(blocks), bins, weights=magnitude[a:b])
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        ]
    )


def hoof_sequence_features(
    clip: np.ndarray,
    blocks: tuple[int, int] = (5, 5),
    bins: int = 8,
    segments: int = 3,
    flow_method: str = DEFAULT_FLOW_METHOD,
) -> np.ndarray:
    """HOOF over the frame sequence (float32) of a (T, H, W) gray clip at its own size; layout
    in the module doc."""
    flows = clip_flows(clip, None, flow_method)
    return hoof_sequence_histograms(flows, blocks, bins, segments).astype(np.float32).ravel()
