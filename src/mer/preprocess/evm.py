"""Linear Eulerian video magnification, motion variant (Wu et al., SIGGRAPH 2012).

Each frame is decomposed into a Laplacian pyramid; every pyramid coefficient is band-passed
along time, multiplied by a per-level amplification alpha_l and added back:

    magnified = clip + collapse(alpha_l * bandpass_t(laplacian_l(clip)))

The structure follows the MIT reference code (amplify_spatial_lpyr_temporal_{ideal,iir,butter}.m):

- Per-level attenuation with the spatial cut-off wavelength lambda_c (paper, Fig. 6):
  delta = lambda_c / 8 / (1 + alpha); the representative wavelength lambda is
  sqrt(H^2 + W^2) / 3 at the coarsest level of the pyramid (the low-pass residual, as in the
  MIT loop, which starts there) and halves per finer level;
  alpha_l = min(alpha, 2 * (lambda / delta / 8 - 1)). The finest band and the low-pass residual
  are not amplified. Unlike MIT we clamp alpha_l at 0: with a very deep explicit pyramid the
  formula turns negative on fine levels, which would reverse the motion there.
- Colour clips are magnified per RGB channel. MIT works in YIQ, but the pyramid and the temporal
  filter are linear and the same alpha is used for every channel, so per channel equals YIQ with
  chromAttenuation = 1 (no chroma damping; there is no such parameter here).
- Output is float32 and not clipped (MIT clips to [0, 1] before writing video); use to_uint8.

Where we deliberately differ from the MIT code (docs/preprocessing.md):

- Ideal filter: MIT keeps only the positive-frequency FFT bins and takes the real part, which
  halves the gain in the pass band. We keep the positive and the negative bins (rfft/irfft), so
  the gain is exactly 1 in the band and alpha means what the paper says. Bins with
  low_hz <= f <= high_hz are kept (MIT: strict inequalities).
- Butterworth: MIT calls MATLAB's butter(1, f / fps), which normalises to Nyquist, so its
  cut-offs are half the nominal Hz. Ours are true Hz (scipy.signal.butter(..., fs=fps)).
  MIT filters causally; a causal filter lags, so the band-passed signal peaks after the
  annotated apex and the onset->apex difference shrinks (measured on raised-cosine bumps of
  40..100 frames at 200 fps, band 0.5-20 Hz: causal keeps 69-83 % of the rise, zero-phase
  86-97 %). We filter zero-phase (scipy.signal.filtfilt, Gustafsson's method for the edge
  states, which needs no padding and kept the most of the rise). The magnitude response is
  squared: each first-order low-pass is -6 dB, not -3 dB, at its cut-off. It is applied as
  the equivalent (T, T) matrix, so its cost grows with T^2 per coefficient.
- IIR ("iir"): exactly MIT's difference of two first-order low-passes
  y_i <- r_i * x + (1 - r_i) * y_i, started at the first frame, causal. r1 and r2 are per-frame
  coefficients, so low_hz/high_hz are not used; the cut-offs are about -fps * ln(1 - r) / (2 pi)
  (r1 = 0.4, r2 = 0.05 at 200 fps: about 16 Hz and 1.6 Hz). Being causal and with a high
  low cut, it keeps only 32-58 % of the onset->apex rise of such bumps; prefer "ideal".

Default band: the onset->apex rise of a micro-expression is the slowest thing in the clip. With
an FFT filter over T frames at fps, bins are fps / T Hz apart, and a low cut above the first bin
throws most of the rise away. DEFAULT_LOW_HZ = 0.5 keeps the first bin for clips up to
2 * fps frames (2 s), and the DC bin cancels in apex - onset anyway. DEFAULT_HIGH_HZ = 20 keeps
>= 99.8 % of the rise of 40..100-frame bumps at 200 fps while dropping faster sensor noise; it
needs fps > 40 (pass high_hz below fps / 2 for slower cameras).

mode "filter_only" is the control for telling magnification from temporal denoising: the same
temporal filter, no amplification, applied to every pixel (the pyramid is linear and sums back
to the frame, so this equals filtering every level): output = per-pixel temporal mean +
bandpass_t(clip). In-band content keeps gain 1; out-of-band content (noise above high_hz, drift
below low_hz) is removed. alpha, levels and lambda_c are ignored in that mode.

Speed (128 x 480 x 640 uint8 gray, alpha 8, 2 cores: benchmarks/bench_evm.py): the finest
band and the residual are never amplified, so they are never band-passed or even built (the
finest band holds 3/4 of the coefficients); the clip is added back directly instead of
collapsing its unamplified levels. The amplified levels of all frames sit in one (time,
coefficient) float32 buffer; the ideal filter with few kept bins runs as a projection onto
their cosines and sines (two thin matrix products, exactly the FFT result, half its cost here),
over column chunks in threads. Frames are analysed and collapsed in threads too. The thread
count is cv2.getNumThreads(), so cv2.setNumThreads(n) limits both OpenCV and these modules; BLAS
is held at one thread per worker while filtering. Peak memory is about the float32 output plus
a third of it for the buffer.

This module holds magnify and the evm stage (onset_apex); the band-pass filters are in
mer.preprocess.temporal_filters, the Laplacian pyramid and per-level alpha in
mer.preprocess.pyramid, the thread helpers in mer.preprocess.parallel.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from mer.data.clips import resize_clip
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

MIN_FRAMES = 4


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
