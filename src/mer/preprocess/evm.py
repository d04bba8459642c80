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

Where we deliberately differ from the MIT code (../shared/notes/evm-flow.md):

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
count is cv2.getNumThreads(), so cv2.setNumThreads(n) limits both OpenCV and this module; BLAS
is held at one thread per worker while filtering. Peak memory is about the float32 output plus
a third of it for the buffer.
"""

from __future__ import annotations

import functools
import math
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import scipy.fft
from threadpoolctl import ThreadpoolController  # a dependency of scikit-learn

from mer.data.clips import resize_clip

DEFAULT_LOW_HZ = 0.5
DEFAULT_HIGH_HZ = 20.0
TEMPORAL_FILTERS = ("ideal", "iir", "butterworth")
MODES = ("magnify", "filter_only")

MIN_FRAMES = 4
# Auto depth: halve while the coarsest level keeps at least this many pixels on its short side.
MIN_COARSEST_SIDE_PX = 8
# Columns band-passed per call: 128 frames x 4096 float32 = 2 MB, stays in cache.
COLUMNS_PER_CHUNK = 4096


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
    _check_filter(n_frames, fps, low_hz, high_hz, temporal_filter, r1, r2)
    if mode == "filter_only":
        bandpass = _column_bandpass(n_frames, fps, low_hz, high_hz, temporal_filter, r1, r2)
        return _filter_only(clip, bandpass)

    if not (math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha}")
    if not (math.isfinite(lambda_c) and lambda_c > 0):
        raise ValueError(f"lambda_c must be a positive wavelength in px, got {lambda_c}")
    frame_hw = clip.shape[1:3]
    n_levels = _pyramid_depth(frame_hw, levels)
    level_alphas = level_amplifications(frame_hw, n_levels, alpha, lambda_c)
    amplified = [level for level, level_alpha in enumerate(level_alphas) if level_alpha > 0]
    if not amplified:  # alpha == 0, or lambda_c attenuates every level
        return clip.astype(np.float32)

    bandpass = _column_bandpass(n_frames, fps, low_hz, high_hz, temporal_filter, r1, r2)
    layout = _BandLayout.of(clip, pyramid_sizes(frame_hw, n_levels), amplified)
    bands = _laplacian_bands(clip, layout)
    _for_column_chunks(bands, bandpass, bands)
    return _collapse_onto_clip(clip, bands, layout, level_alphas)


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


def _check_filter(
    n_frames: int,
    fps: float,
    low_hz: float,
    high_hz: float,
    temporal_filter: str,
    r1: float,
    r2: float,
) -> None:
    if temporal_filter not in TEMPORAL_FILTERS:
        raise ValueError(
            f"unknown temporal_filter {temporal_filter!r}; use one of {TEMPORAL_FILTERS}"
        )
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    if temporal_filter == "iir":
        if not 0 < r2 < r1 <= 1:
            raise ValueError(
                f"iir needs 0 < r2 < r1 <= 1 (r1 sets the high cut, r2 the low cut), "
                f"got r1={r1}, r2={r2}"
            )
        return
    nyquist_hz = fps / 2
    if not 0 < low_hz < high_hz < nyquist_hz:
        raise ValueError(
            f"band {low_hz}..{high_hz} Hz must satisfy 0 < low_hz < high_hz < fps/2 = {nyquist_hz} "
            f"Hz at {fps} fps; lower high_hz or check fps"
        )
    if temporal_filter == "ideal":
        bin_hz = fps / n_frames
        kept_bins = _ideal_band_mask(n_frames, fps, low_hz, high_hz).sum()
        if kept_bins == 0:
            raise ValueError(
                f"no FFT bin of a {n_frames}-frame clip at {fps} fps (bins {bin_hz:.3g} Hz apart) "
                f"falls in {low_hz}..{high_hz} Hz: use a longer clip or widen the band"
            )
        if low_hz > bin_hz:
            warnings.warn(
                f"low_hz={low_hz} drops the first FFT bin ({bin_hz:.3g} Hz for {n_frames} frames "
                f"at {fps} fps), which carries most of a slow onset->apex rise; "
                f"use low_hz <= {bin_hz:.3g}",
                stacklevel=3,
            )


def _pyramid_depth(frame_hw: tuple[int, int], levels: int | None) -> int:
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


def _ideal_band_mask(n_frames: int, fps: float, low_hz: float, high_hz: float) -> np.ndarray:
    """True for the rfft bins kept by the ideal filter (both signs of each: gain 1)."""
    bin_freqs_hz = scipy.fft.rfftfreq(n_frames, d=1 / fps)
    return (bin_freqs_hz >= low_hz) & (bin_freqs_hz <= high_hz)


def _column_bandpass(
    n_frames: int,
    fps: float,
    low_hz: float,
    high_hz: float,
    temporal_filter: str,
    r1: float,
    r2: float,
) -> Callable[[np.ndarray], np.ndarray]:
    """A function band-passing every column of a (time, columns) array, DC removed."""
    if temporal_filter == "ideal":
        kept_bins = _ideal_band_mask(n_frames, fps, low_hz, high_hz)
        if kept_bins.sum() <= 3 * math.log2(n_frames):
            return _fourier_projection(n_frames, kept_bins)

        def ideal(columns: np.ndarray) -> np.ndarray:
            spectrum = scipy.fft.rfft(columns, axis=0)
            spectrum[~kept_bins] = 0
            return scipy.fft.irfft(spectrum, n=n_frames, axis=0, overwrite_x=True)

        return ideal

    if temporal_filter == "butterworth":
        # Zero-phase filtering is linear in the clip, edge states included, so it is one
        # (T, T) matrix: built once from the impulse responses, then a matrix product per
        # chunk (scipy's filtfilt along axis 0 of many columns is ~50x slower).
        from scipy import signal  # imported here: it costs ~0.5 s, a third of a short job

        low_b, low_a = signal.butter(1, low_hz, btype="low", fs=fps)
        high_b, high_a = signal.butter(1, high_hz, btype="low", fs=fps)
        impulses = np.eye(n_frames)
        passed_high = signal.filtfilt(high_b, high_a, impulses, axis=0, method="gust")
        passed_low = signal.filtfilt(low_b, low_a, impulses, axis=0, method="gust")
        bandpass_matrix = (passed_high - passed_low).astype(np.float32)

        def butterworth(columns: np.ndarray) -> np.ndarray:
            return bandpass_matrix @ columns

        return butterworth

    def iir(columns: np.ndarray) -> np.ndarray:
        # MIT's loop: both low-passes start at the first frame, so the first output is 0.
        lowpass_fast = columns[0].copy()
        lowpass_slow = columns[0].copy()
        passed = np.empty_like(columns)
        for frame_index, frame_columns in enumerate(columns):
            lowpass_fast += r1 * (frame_columns - lowpass_fast)
            lowpass_slow += r2 * (frame_columns - lowpass_slow)
            np.subtract(lowpass_fast, lowpass_slow, out=passed[frame_index])
        return passed

    return iir


def _fourier_projection(n_frames: int, kept_bins: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The ideal filter as a projection onto the kept bins' cosines and sines.

    Exactly rfft -> zero the other bins -> irfft (DC and Nyquist are never kept: 0 < low_hz,
    high_hz < fps/2), but as two thin matrix products. A micro-expression band keeps few bins
    (12 of 65 for 128 frames at 200 fps, 0.5-20 Hz), and then this costs about half the FFT
    pair here; for wide bands (more than ~3 log2 T bins) the FFT is cheaper and is used.
    """
    time_index = np.arange(n_frames)
    basis = []
    for bin_index in np.flatnonzero(kept_bins):
        phase = 2 * np.pi * bin_index * time_index / n_frames
        basis += [np.cos(phase), np.sin(phase)]
    # orthonormal rows: sum over t of cos^2 (or sin^2) is T/2 for 0 < bin < T/2
    analysis = (np.array(basis) * np.sqrt(2 / n_frames)).astype(np.float32)
    synthesis = np.ascontiguousarray(analysis.T)

    def projection(columns: np.ndarray) -> np.ndarray:
        return synthesis @ (analysis @ columns)

    return projection


def _for_column_chunks(
    source: np.ndarray, transform: Callable[[np.ndarray], np.ndarray], target: np.ndarray
) -> None:
    """target[:, chunk] = transform(source[:, chunk]) over column chunks, in threads.

    target may be source. Chunks keep the temporaries small (cache, page faults, memory);
    FFTs and matrix products release the GIL, so the threads run in parallel. BLAS is held at
    one thread meanwhile: its own threads would oversubscribe the cores and keep spinning
    into the next stage (measured ~20 % slower). The lock keeps concurrent calls from
    interleaving the save/restore of that process-wide setting.
    """
    n_columns = source.shape[1]
    starts = range(0, n_columns, COLUMNS_PER_CHUNK)

    def run_chunk(start: int) -> None:
        chunk = slice(start, start + COLUMNS_PER_CHUNK)
        target[:, chunk] = transform(np.asarray(source[:, chunk], dtype=np.float32))

    n_threads = min(_thread_count(), len(starts))
    with _BLAS_LIMIT_LOCK, _blas_controller().limit(limits=1, user_api="blas"):
        if n_threads == 1:
            for start in starts:
                run_chunk(start)
            return
        with ThreadPoolExecutor(n_threads) as pool:
            list(pool.map(run_chunk, starts))


_BLAS_LIMIT_LOCK = threading.Lock()


@functools.cache
def _blas_controller() -> ThreadpoolController:
    return ThreadpoolController()  # scans the loaded libraries once (~ms), then reused


def _filter_only(clip: np.ndarray, bandpass: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Per-pixel temporal mean + band-passed clip: the same filter, no amplification."""
    n_frames = clip.shape[0]
    pixels = clip.reshape(n_frames, -1)
    filtered = np.empty(pixels.shape, dtype=np.float32)

    def mean_plus_band(columns: np.ndarray) -> np.ndarray:
        return columns.mean(axis=0, keepdims=True) + bandpass(columns)

    _for_column_chunks(pixels, mean_plus_band, filtered)
    return filtered.reshape(clip.shape)


@dataclass(frozen=True)
class _BandLayout:
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


def _for_frame_blocks(work: Callable[[range], None], n_frames: int) -> None:
    """Run work(frame_indices) on contiguous blocks of frames, one block per thread.

    OpenCV releases the GIL, and its own threading does little for the many small levels.
    """
    n_threads = min(_thread_count(), n_frames)
    bounds = np.linspace(0, n_frames, n_threads + 1).astype(int)
    blocks = [range(start, stop) for start, stop in zip(bounds[:-1], bounds[1:], strict=True)]
    if n_threads == 1:
        work(blocks[0])
        return
    with ThreadPoolExecutor(n_threads) as pool:
        list(pool.map(work, blocks))


def _thread_count() -> int:
    return max(1, cv2.getNumThreads())


def _laplacian_bands(clip: np.ndarray, layout: _BandLayout) -> np.ndarray:
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

    _for_frame_blocks(analyse, clip.shape[0])
    return bands


def _collapse_onto_clip(
    clip: np.ndarray, bands: np.ndarray, layout: _BandLayout, level_alphas: list[float]
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

    _for_frame_blocks(synthesise, clip.shape[0])
    return magnified
