"""Linear Eulerian video magnification, motion variant (Wu et al., SIGGRAPH 2012).

Each frame is decomposed into a Laplacian pyramid; every pyramid coefficient is band-passed
along time, multiplied by a per-level amplification alpha_l and added back:

    magnified = clip + collapse(alpha_l * bandpass_t(laplacian_l(clip)))

It follows the MIT reference code, with these decisions (reasons and measurements:
docs/preprocessing.md, "EVM implementation notes"):
- alpha_l = min(alpha, 2 * (lambda / delta / 8 - 1)), clamped at 0; finest band and low-pass
  residual not amplified; colour clips per RGB channel (= YIQ without chroma damping).
- Ideal filter: gain exactly 1 in low_hz <= f <= high_hz (MIT halves it).
- Butterworth: true Hz and zero-phase (MIT: Nyquist-normalised, causal). "iir": MIT's, causal.
- mode "filter_only": the same temporal filter without amplification (the control).
- Output is float32, not clipped; use to_uint8.
Threads: cv2.getNumThreads(), so cv2.setNumThreads(n) limits OpenCV and this module alike.

This module holds magnify and the evm stage (onset_apex); the band-pass filters are in
mer.preprocess.temporal_filters, the Laplacian pyramid and per-level alpha in
mer.preprocess.pyramid, the thread helpers in mer.preprocess.parallel.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from mer.data.clips import resize_clip
from mer.data.samples import MIN_CLIP_FRAMES
from mer.preprocess.parallel import for_column_chunks
from mer.preprocess.pyramid import (
    BandLayout,
    collapse_onto_clip,
    laplacian_bands,
    level_amplifications,
    pyramid_depth,
    pyramid_sizes,
)
from mer.preprocess.temporal_filters import (
    DEFAULT_HIGH_HZ,
    DEFAULT_LOW_HZ,
    check_filter,
    column_bandpass,
)

MODES = ("magnify", "filter_only")

# The temporal filter's minimum clip length, which the samples stage also enforces.
MIN_FRAMES = MIN_CLIP_FRAMES


def magnify(
    clip: np.ndarray,
    fps: float,
    alpha: float = 8.0,
    low_hz: float = DEFAULT_LOW_HZ,
    high_hz: float = DEFAULT_HIGH_HZ,
    temporal_filter: str = "ideal",
    levels: int | None = None,
    lambda_c: float = 16.0,
    mode: str = "magnify",
    r1: float = 0.4,
    r2: float = 0.05,
) -> np.ndarray:
    """Magnify the motion in `clip` (or, with mode "filter_only", only band-pass it).

    clip: (T, H, W) gray or (T, H, W, 3) colour, uint8 or float; returns float32 of the same
    shape, values not clipped. fps: frames per second of the clip, for the band in Hz.
    alpha: amplification (0 returns the input). low_hz, high_hz: pass band of the "ideal" and
    "butterworth" filters. levels: Laplacian pyramid levels including the low-pass residual;
    None takes as many as keep >= 8 px on the coarsest level's short side. lambda_c: spatial
    cut-off wavelength (px) that limits alpha on fine levels. r1, r2: "iir" coefficients.
    See the module docstring for the exact definitions and where they differ from MIT's code.
    """
    _check_clip(clip)
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {MODES}")
    n_frames = clip.shape[0]
    check_filter(n_frames, fps, low_hz, high_hz, temporal_filter, r1, r2)
    if mode == "filter_only":
        bandpass = column_bandpass(n_frames, fps, low_hz, high_hz, temporal_filter, r1, r2)
        return _filter_only(clip, bandpass)

    if not (math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha}")
    if not (math.isfinite(lambda_c) and lambda_c > 0):
        raise ValueError(f"lambda_c must be a positive wavelength in px, got {lambda_c}")
    frame_hw = clip.shape[1:3]
    n_levels = pyramid_depth(frame_hw, levels)
    level_alphas = level_amplifications(frame_hw, n_levels, alpha, lambda_c)
    amplified = [level for level, level_alpha in enumerate(level_alphas) if level_alpha > 0]
    if not amplified:  # alpha == 0, or lambda_c attenuates every level
        return clip.astype(np.float32)

    bandpass = column_bandpass(n_frames, fps, low_hz, high_hz, temporal_filter, r1, r2)
    layout = BandLayout.of(clip, pyramid_sizes(frame_hw, n_levels), amplified)
    bands = laplacian_bands(clip, layout)
    for_column_chunks(bands, bandpass, bands)
    return collapse_onto_clip(clip, bands, layout, level_alphas)


def onset_apex(
    clip: np.ndarray,
    apex_index: int,
    fps: float,
    size: int | None = None,
    crop_size: int | None = None,
    crop_margin: float = 0.15,
    sample: str = "",
    **magnify_params,
) -> tuple[dict, tuple[int, ...] | None, str]:
    """The evm stage on a clip onset..offset: optional face crop, resize, magnify; keep the
    onset and apex frames. Returns (frames, face box or None, crop warning or "").

    frames holds onset_gray, apex_gray (uint8, working size) and onset_magnified,
    apex_magnified (float32); `mer evm` and `mer predict` both call this.
    """
    if not 0 <= apex_index < len(clip):
        raise ValueError(
            f"{sample or 'clip'}: apex index {apex_index} lies outside the clip's "
            f"{len(clip)} frames after the onset"
        )
    box, crop_warning = None, ""
    if crop_size:
        from mer.data import crop

        box, warning = crop.clip_box(clip[0], crop_margin, sample=sample)
        clip = crop.crop_clip(clip, box, crop_size)
        crop_warning = warning or ""
    clip = resize_clip(clip, size)
    magnified = magnify(clip, fps, **magnify_params)
    frames = {
        "onset_gray": clip[0],
        "apex_gray": clip[apex_index],
        "onset_magnified": magnified[0],
        "apex_magnified": magnified[apex_index],
    }
    return frames, box, crop_warning


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Round to the nearest integer and saturate to 0..255 (truncation would bias down)."""
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def _check_clip(clip: np.ndarray) -> None:
    if not isinstance(clip, np.ndarray):
        raise ValueError(f"clip must be a numpy array, got {type(clip).__name__}")
    is_gray = clip.ndim == 3
    is_colour = clip.ndim == 4 and clip.shape[3] == 3
    if not (is_gray or is_colour):
        raise ValueError(
            f"clip must be (T, H, W) gray or (T, H, W, 3) colour, got shape {clip.shape}"
        )
    if not (np.issubdtype(clip.dtype, np.integer) or np.issubdtype(clip.dtype, np.floating)):
        raise ValueError(f"clip must be an integer or float array, got dtype {clip.dtype}")
    if clip.shape[0] < MIN_FRAMES:
        raise ValueError(
            f"clip has {clip.shape[0]} frames; the temporal filter needs at least {MIN_FRAMES}: "
            "pass a longer clip (e.g. onset..offset plus a few frames either side)"
        )
    if min(clip.shape[1:3]) < 1:
        raise ValueError(f"clip frames are empty: shape {clip.shape}")
    # min and max propagate NaN; two passes without a clip-sized boolean temporary
    is_float = np.issubdtype(clip.dtype, np.floating)
    if is_float and not (np.isfinite(clip.min()) and np.isfinite(clip.max())):
        raise ValueError("clip contains NaN or infinite values; fix or drop those frames first")


def _filter_only(clip: np.ndarray, bandpass: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Per-pixel temporal mean + band-passed clip: the same filter, no amplification."""
    n_frames = clip.shape[0]
    pixels = clip.reshape(n_frames, -1)
    filtered = np.empty(pixels.shape, dtype=np.float32)

    def mean_plus_band(columns: np.ndarray) -> np.ndarray:
        return columns.mean(axis=0, keepdims=True) + bandpass(columns)

    for_column_chunks(pixels, mean_plus_band, filtered)
    return filtered.reshape(clip.shape)
