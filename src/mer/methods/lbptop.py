"""The LBP-TOP + linear SVM baseline: hand-crafted dynamic texture features under the same LOSO.

LBP-TOP (Zhao & Pietikainen, "Dynamic texture recognition using local binary patterns with an
application to facial expressions", TPAMI 2007): local binary patterns on the three orthogonal
planes of a clip, XY (each frame), XT (each image row over time) and YT (each image column over
time), histogrammed per spatial block and concatenated.

Feature layout of `lbptop_features`, for a blocks=(rows, columns) grid and P neighbours:
    length = rows * columns * 3 * (P * (P - 1) + 3)        (P = 8: 59 bins, 25 blocks: 4425)
ordered block by block (row-major over the grid), within a block XY, XT, YT, within a plane
the "nri_uniform" codes 0 .. P*(P-1)+2 (the last bin collects every non-uniform pattern).
Each (block, plane) histogram sums to 1, so clips of different length and size compare.

The features are classified by mer.methods.svm (linear SVM, one fold per held-out subject).
"""

from __future__ import annotations

import numpy as np
from skimage.feature import local_binary_pattern

PLANES = ("XY", "XT", "YT")


def lbp_bins(points: int) -> int:
    """Number of "nri_uniform" codes for P neighbours: P(P-1) uniform rotations, the two flat
    patterns (all 0, all 1) and one bin for every non-uniform pattern."""
    return points * (points - 1) + 3


def lbptop_length(blocks: tuple[int, int] = (5, 5), points: int = 8) -> int:
    """Length of an `lbptop_features` vector: blocks x 3 planes x bins."""
    return blocks[0] * blocks[1] * len(PLANES) * lbp_bins(points)


def _plane_codes(stacked_slices: np.ndarray, radius: int, points: int) -> np.ndarray:
    """LBP codes of a pile of 2-D slices (S, A, B), computed as one tall (S*A, B) image.

    One skimage call instead of S: neighbours leak across slice boundaries only in the
    `radius` edge rows of each slice, which lbptop_features discards anyway.
    """
    n_slices, height, width = stacked_slices.shape
    tall_image = np.ascontiguousarray(stacked_slices).reshape(n_slices * height, width)
    codes = local_binary_pattern(tall_image, points, radius, method="nri_uniform")
    return codes.astype(np.int64).reshape(n_slices, height, width)


def check_clip(clip: np.ndarray, radius: int, frames_reach: int | None = None) -> None:
    """A (T, H, W) integer clip with interior pixels: `radius` from its sides and
    `frames_reach` (default: radius) from its first and last frames."""
    frames_reach = radius if frames_reach is None else frames_reach
    if clip.ndim != 3:
        raise ValueError(f"a clip is (T, H, W) gray; got shape {clip.shape}")
    if not np.issubdtype(clip.dtype, np.integer):
        # Float ties make the >= comparisons unstable (skimage warns for the same reason).
        raise ValueError(f"a clip must hold integer gray levels (uint8); got {clip.dtype}")
    n_frames, height, width = clip.shape
    if n_frames < 2 * frames_reach + 1 or min(height, width) < 2 * radius + 1:
        raise ValueError(
            f"a clip of shape {clip.shape} has no interior pixel for LBP radius {radius}: "
            f"it needs at least {2 * frames_reach + 1} frames and {2 * radius + 1} rows and "
            "columns"
        )


def lbptop_codes(clip: np.ndarray, radius: int = 1, points: int = 8) -> dict[str, np.ndarray]:
    """Plane name -> LBP codes (T', H', W') of every interior pixel of the clip.

    Interior: `radius` pixels away from every face of the (T, H, W) volume, the same centres
    for all three planes as in Zhao & Pietikainen; there every neighbour is a real pixel
    (skimage pads with zeros, which would break the invariance to a brightness offset).
    """
    check_clip(clip, radius)
    n_frames, height, width = clip.shape
    interior = (
        slice(radius, n_frames - radius),
        slice(radius, height - radius),
        slice(radius, width - radius),
    )
    # Each plane's slices are piled along axis 0 and moved back to (T, H, W) order after.
    xy = _plane_codes(clip, radius, points)  # (T, H, W): one image per frame
    xt = _plane_codes(clip.transpose(1, 0, 2), radius, points).transpose(1, 0, 2)  # per row
    yt = _plane_codes(clip.transpose(2, 0, 1), radius, points).transpose(1, 2, 0)  # per column
    return {name: codes[interior] for name, codes in zip(PLANES, (xy, xt, yt), strict=True)}


def block_of_pixel(height: int, width: int, blocks: tuple[int, int]) -> np.ndarray:
    """(height, width) index of each pixel's block, row-major over a blocks=(rows, columns) grid.

    Blocks split H and W as evenly as possible (sizes differ by at most one pixel).
    """
    block_rows, block_columns = blocks
    if block_rows < 1 or block_columns < 1 or height < block_rows or width < block_columns:
        raise ValueError(
            f"cannot split {height}x{width} interior pixels into {block_rows}x{block_columns} "
            "blocks; use fewer blocks or a larger clip"
        )
    row_block = np.arange(height) * block_rows // height
    column_block = np.arange(width) * block_columns // width
    return row_block[:, None] * block_columns + column_block[None, :]


def block_histograms(
    codes: np.ndarray, blocks: tuple[int, int], n_bins: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """(blocks[0] * blocks[1], n_bins) histograms of codes (T, H, W) per block, pooling all
    frames, each normalised to sum 1 (a block with no weight at all stays 0).

    `weights` (the shape of codes): each code counts its weight instead of 1 (HOOF, HOG3D).
    """
    _, height, width = codes.shape
    block = block_of_pixel(height, width, blocks)
    n_blocks = blocks[0] * blocks[1]
    index = np.broadcast_to(block[None] * n_bins, codes.shape) + codes
    counts = np.bincount(
        index.ravel(),
        weights=None if weights is None else weights.ravel(),
        minlength=n_blocks * n_bins,
    ).reshape(n_blocks, n_bins)
    totals = counts.sum(axis=1, keepdims=True)
    return counts / np.where(totals > 0, totals, 1)


def lbptop_features(
    clip: np.ndarray, blocks: tuple[int, int] = (5, 5), radius: int = 1, points: int = 8
) -> np.ndarray:
    """LBP-TOP feature vector (float32) of a (T, H, W) uint8 clip; layout in the module doc.

    Invariant to a constant brightness offset (as long as no pixel saturates): every code only
    compares neighbours with their centre.
    """
    n_bins = lbp_bins(points)
    codes = lbptop_codes(clip, radius, points)
    per_plane = [block_histograms(codes[name], blocks, n_bins) for name in PLANES]
    return np.stack(per_plane, axis=1).astype(np.float32).ravel()  # (blocks, planes, bins)
