"""Laplacian pyramids of the Eulerian magnification: level sizes and depth, per-level alpha
with lambda_c, and the analysis and collapse of the amplified levels of every frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from mer.preprocess.parallel import for_frame_blocks

# Auto depth: halve while the coarsest level keeps at least this many pixels on its short side.
MIN_COARSEST_SIDE_PX = 8


def pyramid_sizes(frame_hw: tuple[int, int], n_levels: int) -> list[tuple[int, int]]:
    """(height, width) of each pyramid level, finest first, as cv2.pyrDown rounds (up)."""
    height, width = frame_hw
    sizes = [(height, width)]
    for _ in range(n_levels - 1):
        height, width = (height + 1) // 2, (width + 1) // 2
        sizes.append((height, width))
    return sizes


def auto_pyramid_depth(frame_hw: tuple[int, int]) -> int:
    """Number of levels (residual included) whose short side stays >= MIN_COARSEST_SIDE_PX."""
    depth = 1
    while min(pyramid_sizes(frame_hw, depth + 1)[-1]) >= MIN_COARSEST_SIDE_PX:
        depth += 1
    return depth


def level_amplifications(
    frame_hw: tuple[int, int], n_levels: int, alpha: float, lambda_c: float
) -> list[float]:
    """alpha_l per pyramid level, finest first (MIT's loop; paper Fig. 6, exaggeration 2)."""
    delta = lambda_c / 8 / (1 + alpha)
    coarsest_wavelength_px = math.hypot(*frame_hw) / 3  # MIT's "experimental constant" 3
    level_alphas = []
    for level in range(n_levels):
        if level in (0, n_levels - 1):  # the finest band and the residual: never amplified
            level_alphas.append(0.0)
            continue
        wavelength_px = coarsest_wavelength_px / 2 ** (n_levels - 1 - level)
        bound = 2 * (wavelength_px / delta / 8 - 1)
        level_alphas.append(max(0.0, min(alpha, bound)))
    return level_alphas


def pyramid_depth(frame_hw: tuple[int, int], levels: int | None) -> int:
    if levels is None:
        depth = auto_pyramid_depth(frame_hw)
        if depth < 3:
            raise ValueError(
                f"frames of {frame_hw[0]}x{frame_hw[1]} px are too small for a pyramid with an "
                f"amplified band (>= 3 levels with >= {MIN_COARSEST_SIDE_PX} px at the coarsest): "
                "use frames of at least 29x29 px or pass levels=3"
            )
        return depth
    if isinstance(levels, bool) or not isinstance(levels, int | np.integer):
        raise ValueError(f"levels must be an integer or None, got {levels!r}")
    deepest = 1
    while min(pyramid_sizes(frame_hw, deepest + 1)[-1]) >= 2:
        deepest += 1
    if not 3 <= levels <= deepest:
        raise ValueError(
            f"levels={levels} is not possible for {frame_hw[0]}x{frame_hw[1]} px frames: "
            f"use 3..{deepest} (the finest band and the residual are never amplified), or None"
        )
    return int(levels)


@dataclass(frozen=True)
class BandLayout:
    """Where each amplified level sits in a (time, coefficients) buffer, one row per frame."""

    sizes: list[tuple[int, int]]  # (height, width) of every pyramid level, finest first
    n_channels: int
    columns: dict[int, slice]  # amplified level -> its columns

    @classmethod
    def of(cls, clip: np.ndarray, sizes: list[tuple[int, int]], amplified: list[int]):
        n_channels = clip.shape[3] if clip.ndim == 4 else 1
        columns = {}
        start = 0
        for level in amplified:
            height, width = sizes[level]
            columns[level] = slice(start, start + height * width * n_channels)
            start += height * width * n_channels
        return cls(sizes, n_channels, columns)

    @property
    def n_columns(self) -> int:
        return max(chunk.stop for chunk in self.columns.values())

    def level_in(self, bands_row: np.ndarray, level: int) -> np.ndarray:
        """View of one level inside one frame's row, shaped as an image."""
        channels = (self.n_channels,) if self.n_channels > 1 else ()
        return bands_row[self.columns[level]].reshape(self.sizes[level] + channels)

    def dstsize(self, level: int) -> tuple[int, int]:
        """cv2's (width, height) of a level: explicit, so odd sizes round-trip."""
        height, width = self.sizes[level]
        return width, height


def laplacian_bands(clip: np.ndarray, layout: BandLayout) -> np.ndarray:
    """Laplacian coefficients of the amplified levels of every frame: (T, coefficients).

    Levels finer than the first amplified one are only pyrDown'ed through: their band-pass
    would be multiplied by 0.
    """
    bands = np.empty((clip.shape[0], layout.n_columns), dtype=np.float32)
    amplified = sorted(layout.columns)

    def analyse(frame_indices: range) -> None:
        frame = np.empty(clip.shape[1:], dtype=np.float32)
        for frame_index in frame_indices:
            np.copyto(frame, clip[frame_index], casting="unsafe")
            gaussian = frame
            for level in range(1, amplified[0] + 1):
                gaussian = cv2.pyrDown(gaussian, dstsize=layout.dstsize(level))
            for level in amplified:
                coarser = cv2.pyrDown(gaussian, dstsize=layout.dstsize(level + 1))
                expanded = cv2.pyrUp(coarser, dstsize=layout.dstsize(level))
                detail = layout.level_in(bands[frame_index], level)
                cv2.subtract(gaussian, expanded, dst=detail)
                gaussian = coarser

    for_frame_blocks(analyse, clip.shape[0])
    return bands


def collapse_onto_clip(
    clip: np.ndarray, bands: np.ndarray, layout: BandLayout, level_alphas: list[float]
) -> np.ndarray:
    """clip + collapse(alpha_l * band-passed level l), frame by frame, into a float32 clip."""
    magnified = np.empty(clip.shape, dtype=np.float32)
    coarsest = max(layout.columns)

    def synthesise(frame_indices: range) -> None:
        for frame_index in frame_indices:
            row = bands[frame_index]
            change = layout.level_in(row, coarsest) * np.float32(level_alphas[coarsest])
            for level in range(coarsest - 1, 0, -1):
                change = cv2.pyrUp(change, dstsize=layout.dstsize(level))
                if level in layout.columns:
                    detail = layout.level_in(row, level)
                    cv2.scaleAdd(detail, level_alphas[level], change, dst=change)
            output = magnified[frame_index]
            cv2.pyrUp(change, dst=output, dstsize=layout.dstsize(0))
            np.add(output, clip[frame_index], out=output)

    for_frame_blocks(synthesise, clip.shape[0])
    return magnified
