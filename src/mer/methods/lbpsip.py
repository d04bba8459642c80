"""LBP-SIP: LBP with Six Intersection Points (Wang, See, Phan & Oh, ACCV 2014), the lightweight
LBP-TOP.

The three orthogonal planes of LBP-TOP through a pixel intersect its 8-neighbourhood circles in
six points: the 4 in-plane neighbours (up, down, left, right at `radius`) and the 2 temporal
neighbours (the same position in the previous and the next frame). LBP-SIP codes those six
points, as two codes (Wang et al.'s split, which keeps the histograms small): a 4-bit spatial
code (2^4 = 16 bins) and a 2-bit temporal code (2^2 = 4 bins); each bit is 1 where the
neighbour is >= the centre (as in skimage's LBP).

Feature layout of `lbpsip_features`, for a blocks=(rows, columns) grid:
    length = rows * columns * (16 + 4)                     (25 blocks: 500)
ordered block by block (row-major), within a block the 16 spatial then the 4 temporal bins;
each of the two histograms of a block sums to 1. Blocks, centres (interior pixels only) and
histograms are LBP-TOP's (mer.methods.lbptop).
"""

from __future__ import annotations

import numpy as np

from mer.methods.lbptop import block_histograms, check_clip

SPATIAL_BINS = 16
TEMPORAL_BINS = 4


def lbpsip_length(blocks: tuple[int, int] = (5, 5)) -> int:
    """Length of an `lbpsip_features` vector: blocks x (16 + 4)."""
    return blocks[0] * blocks[1] * (SPATIAL_BINS + TEMPORAL_BINS)


def lbpsip_codes(clip: np.ndarray, radius: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(spatial codes 0..15, temporal codes 0..3) of every interior pixel, each (T-2, H-2r, W-2r).

    Interior: 1 frame from the clip's ends and `radius` pixels from its sides, so that every
    neighbour is a real pixel (a brightness offset then leaves every code unchanged).
    """
    check_clip(clip, radius, frames_reach=1)
    volume = clip.astype(np.int16)
    n_frames, height, width = volume.shape
    r = radius
    centre = volume[1:-1, r : height - r, r : width - r]

    def neighbour(dt: int, dy: int, dx: int) -> np.ndarray:
        return volume[1 + dt : n_frames - 1 + dt, r + dy : height - r + dy, r + dx : width - r + dx]

    in_plane = [neighbour(0, -r, 0), neighbour(0, 0, r), neighbour(0, r, 0), neighbour(0, 0, -r)]
    spatial = sum((n >= centre).astype(np.int64) << bit for bit, n in enumerate(in_plane))
    temporal = (neighbour(-1, 0, 0) >= centre).astype(np.int64) | (
        (neighbour(1, 0, 0) >= centre).astype(np.int64) << 1
    )
    return spatial, temporal


def lbpsip_features(
    clip: np.ndarray, blocks: tuple[int, int] = (5, 5), radius: int = 1
) -> np.ndarray:
    """LBP-SIP feature vector (float32) of a (T, H, W) uint8 clip; layout in the module doc.

    Invariant to a constant brightness offset (as long as no pixel saturates).
    """
    spatial, temporal = lbpsip_codes(clip, radius)
    per_block = np.concatenate(
        [
            block_histograms(spatial, tuple(blocks), SPATIAL_BINS),
            block_histograms(temporal, tuple(blocks), TEMPORAL_BINS),
        ],
        axis=1,
    )
    return per_block.astype(np.float32).ravel()
