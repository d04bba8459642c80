"""Temporal band-pass filters of the Eulerian magnification: ideal, iir, butterworth.

Each filter acts on the columns of a (time, columns) array; see mer.preprocess.evm for the
exact definitions and where they differ from MIT's code.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np

DEFAULT_LOW_HZ = 0.5
DEFAULT_HIGH_HZ = 20.0
TEMPORAL_FILTERS = ("ideal", "iir", "butterworth")


def check_filter(
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


def _ideal_band_mask(n_frames: int, fps: float, low_hz: float, high_hz: float) -> np.ndarray:
    """True for the rfft bins kept by the ideal filter (both signs of each: gain 1)."""
    bin_freqs_hz = np.fft.rfftfreq(n_frames, d=1 / fps)  # = scipy.fft.rfftfreq
    return (bin_freqs_hz >= low_hz) & (bin_freqs_hz <= high_hz)


def column_bandpass(
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

        # Imported here: SciPy's FFT module costs ~0.35 s to load, more than a short clip's
        # EVM, and clips whose band keeps few bins never need it (the projection above).
        import scipy.fft

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
