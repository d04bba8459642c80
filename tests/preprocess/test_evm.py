"""Properties of linear Eulerian video magnification (mer.preprocess.evm).

Motion is synthesised with exact Fourier shifts of periodic textures (cv2.remap quantises to
1/32 px) and measured on the output by a Gauss-Newton least-squares shift estimate.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage, signal

from mer.preprocess.evm import MODES, magnify, to_uint8
from mer.preprocess.pyramid import auto_pyramid_depth, level_amplifications, pyramid_sizes
from mer.preprocess.temporal_filters import DEFAULT_HIGH_HZ, DEFAULT_LOW_HZ, TEMPORAL_FILTERS

FPS = 200.0
IN_BAND_HZ = 6.25  # bin 2 of a 64-frame clip at 200 fps: inside every filter's pass band
ABOVE_BAND_HZ = 75.0  # bin 24: far above DEFAULT_HIGH_HZ


# ---------------------------------------------------------------- synthetic clips and measures


def periodic_texture(
    size_px: int, seed: int, shortest_wavelength_px: float = 12, longest_wavelength_px: float = 48
) -> np.ndarray:
    """Random periodic texture (mean 128, std 30) with wavelengths in the given range."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.fft2(rng.normal(size=(size_px, size_px)))
    freq_y, freq_x = np.meshgrid(np.fft.fftfreq(size_px), np.fft.fftfreq(size_px), indexing="ij")
    radial_freq = np.hypot(freq_y, freq_x)
    outside = (radial_freq < 1 / longest_wavelength_px) | (radial_freq > 1 / shortest_wavelength_px)
    spectrum[outside] = 0
    pattern = np.fft.ifft2(spectrum).real
    return 128 + 30 * pattern / pattern.std()


def shift_x(image: np.ndarray, shift_px: float) -> np.ndarray:
    """image(y, x - shift_px), exact for a periodic image (Fourier shift)."""
    spectrum = ndimage.fourier_shift(np.fft.fft2(image), (0, shift_px))
    return np.fft.ifft2(spectrum).real


def translating_clip(image: np.ndarray, shifts_px: np.ndarray) -> np.ndarray:
    return np.stack([shift_x(image, shift) for shift in shifts_px]).astype(np.float32)


def sinusoid(n_frames: int, freq_hz: float, amplitude: float) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq_hz * np.arange(n_frames) / FPS)


def measured_shifts_px(frames: np.ndarray, reference: np.ndarray, border_px: int = 12):
    """Per-frame horizontal shift of each frame against reference (Gauss-Newton on the centre)."""
    reference_spectrum = np.fft.fft2(reference)
    centre = (slice(border_px, -border_px), slice(border_px, -border_px))
    shifts = []
    for frame in frames:
        shift = 0.0
        for _ in range(4):
            warped = np.fft.ifft2(ndimage.fourier_shift(reference_spectrum, (0, shift))).real
            gradient_x = np.gradient(warped, axis=1)[centre]
            residual = (frame - warped)[centre]
            shift -= np.sum(residual * gradient_x) / np.sum(gradient_x**2)
        shifts.append(shift)
    return np.array(shifts)


def oscillation_amplitude(series: np.ndarray, freq_hz: float) -> float:
    """Amplitude of the least-squares sinusoid of freq_hz in series (phase free, offset removed)."""
    phase = 2 * np.pi * freq_hz * np.arange(len(series)) / FPS
    design = np.stack([np.sin(phase), np.cos(phase), np.ones_like(phase)], axis=1)
    coefficients = np.linalg.lstsq(design, series, rcond=None)[0]
    return float(np.hypot(coefficients[0], coefficients[1]))


def motion_gain(freq_hz: float, amplitude_px: float = 0.2, **magnify_args) -> float:
    """Output / input amplitude of a sinusoidal sub-pixel translation of a texture."""
    texture = periodic_texture(96, seed=0)
    shifts_px = sinusoid(64, freq_hz, amplitude_px)
    clip = translating_clip(texture, shifts_px)
    output = magnify(clip, FPS, **magnify_args)
    output_shifts = measured_shifts_px(output, output.mean(axis=0))
    input_shifts = measured_shifts_px(clip, texture)
    return oscillation_amplitude(output_shifts, freq_hz) / oscillation_amplitude(
        input_shifts, freq_hz
    )


def raised_cosine_expression(bump_frames: int, frames_before: int, frames_after: int):
    """Onset -> apex -> offset profile (0 -> 1 -> 0) with neutral frames around it."""
    phase = np.arange(bump_frames) / (bump_frames - 1)
    bump = 0.5 - 0.5 * np.cos(2 * np.pi * phase)
    profile = np.concatenate([np.zeros(frames_before), bump, np.zeros(frames_after)])
    onset = frames_before
    apex = frames_before + (bump_frames - 1) // 2
    return profile, onset, apex


def expression_clip(profile: np.ndarray, size_px: int = 128, wavelength_px: float = 28):
    """A vertical grating whose contrast follows the profile (sits in fully amplified levels)."""
    grating = 10 * np.cos(2 * np.pi * np.arange(size_px) / wavelength_px)
    pattern = np.broadcast_to(grating, (size_px, size_px))
    return (128 + profile[:, None, None] * pattern).astype(np.float32)


def apex_minus_onset_gain(clip, output, onset: int, apex: int) -> float:
    change_in = clip[apex] - clip[onset]
    change_out = output[apex] - output[onset]
    return float(np.sum(change_out * change_in) / np.sum(change_in * change_in))


# ---------------------------------------------------------------- a plain reference (MIT layout)


def laplacian_pyramid(frame: np.ndarray, sizes) -> list[np.ndarray]:
    gaussians = [frame]
    for height, width in sizes[1:]:
        gaussians.append(cv2.pyrDown(gaussians[-1], dstsize=(width, height)))
    pyramid = []
    for level in range(len(sizes) - 1):
        height, width = sizes[level]
        expanded = cv2.pyrUp(gaussians[level + 1], dstsize=(width, height))
        pyramid.append(gaussians[level] - expanded)
    return pyramid + [gaussians[-1]]


def collapse(pyramid: list[np.ndarray], sizes) -> np.ndarray:
    image = pyramid[-1]
    for level in range(len(sizes) - 2, -1, -1):
        height, width = sizes[level]
        image = cv2.pyrUp(image, dstsize=(width, height)) + pyramid[level]
    return image


def reference_magnify(
    clip, fps, alpha, temporal_filter, levels, high_hz, lambda_c=16.0, r1=0.4, r2=0.05
):
    """Every level of every frame built, filtered, amplified and collapsed, as MIT's code does.

    Ideal: full complex FFT with the band kept at +f and -f (gain 1). IIR: MIT's frame loop.
    """
    frame_hw = clip.shape[1:3]
    sizes = pyramid_sizes(frame_hw, levels)
    level_alphas = level_amplifications(frame_hw, levels, alpha, lambda_c)
    pyramids = [laplacian_pyramid(frame, sizes) for frame in clip.astype(np.float32)]
    n_frames = clip.shape[0]
    magnified_levels = []
    for level in range(levels):
        stack = np.stack([pyramid[level] for pyramid in pyramids]).astype(np.float64)
        if temporal_filter == "ideal":
            freqs_hz = np.abs(np.fft.fftfreq(n_frames, 1 / fps))
            keep = (freqs_hz >= DEFAULT_LOW_HZ) & (freqs_hz <= high_hz)
            shape = (n_frames,) + (1,) * (stack.ndim - 1)
            filtered = np.fft.ifft(np.fft.fft(stack, axis=0) * keep.reshape(shape), axis=0).real
        else:
            lowpass1, lowpass2 = stack[0].copy(), stack[0].copy()
            filtered = np.zeros_like(stack)
            for t in range(1, n_frames):
                lowpass1 = (1 - r1) * lowpass1 + r1 * stack[t]
                lowpass2 = (1 - r2) * lowpass2 + r2 * stack[t]
                filtered[t] = lowpass1 - lowpass2
        magnified_levels.append(stack + level_alphas[level] * filtered)
    return np.stack(
        [
            collapse([magnified[t].astype(np.float32) for magnified in magnified_levels], sizes)
            for t in range(n_frames)
        ]
    )


# ---------------------------------------------------------------- identity and structure


@settings(max_examples=15, deadline=None)
@given(
    n_frames=st.integers(4, 12),
    height=st.integers(29, 40),
    width=st.integers(29, 40),
    colour=st.booleans(),
    dtype=st.sampled_from([np.uint8, np.float32, np.float64]),
    temporal_filter=st.sampled_from(TEMPORAL_FILTERS),
)
def test_alpha_zero_returns_the_input_clip(n_frames, height, width, colour, dtype, temporal_filter):
    rng = np.random.default_rng(n_frames * height * width)
    shape = (n_frames, height, width) + ((3,) if colour else ())
    clip = (rng.random(shape) * 255).astype(dtype)
    output = magnify(clip, 100.0, alpha=0.0, high_hz=40.0, temporal_filter=temporal_filter)
    assert output.dtype == np.float32
    assert output.shape == clip.shape
    np.testing.assert_array_equal(output, clip.astype(np.float32))


@settings(max_examples=12, deadline=None)
@given(
    alpha=st.floats(0.0, 100.0),
    temporal_filter=st.sampled_from(TEMPORAL_FILTERS),
    mode=st.sampled_from(MODES),
)
def test_a_static_clip_stays_static(alpha, temporal_filter, mode):
    frame = periodic_texture(48, seed=1)
    clip = np.repeat(frame[None], 20, axis=0).astype(np.float32)
    output = magnify(clip, FPS, alpha=alpha, temporal_filter=temporal_filter, mode=mode)
    np.testing.assert_allclose(output, clip, atol=2e-3)


@pytest.mark.parametrize(
    "temporal_filter, n_frames, high_hz",
    [
        ("ideal", 24, DEFAULT_HIGH_HZ),  # few bins kept: computed as a projection
        ("ideal", 64, 90.0),  # many bins kept: computed with rfft/irfft
        ("iir", 24, DEFAULT_HIGH_HZ),
    ],
)
def test_matches_a_plain_full_pyramid_implementation(temporal_filter, n_frames, high_hz):
    rng = np.random.default_rng(5)
    clip = rng.random((n_frames, 45, 67, 3)) * 255
    levels = 4
    expected = reference_magnify(clip, FPS, 8.0, temporal_filter, levels, high_hz)
    output = magnify(
        clip, FPS, alpha=8.0, temporal_filter=temporal_filter, levels=levels, high_hz=high_hz
    )
    np.testing.assert_allclose(output, expected, atol=5e-3)


def test_butterworth_is_zero_phase_filtfilt_in_hz():
    rng = np.random.default_rng(6)
    clip = rng.random((50, 3, 4)) * 255
    output = magnify(clip, FPS, mode="filter_only", temporal_filter="butterworth")
    low_b, low_a = signal.butter(1, DEFAULT_LOW_HZ, fs=FPS)
    high_b, high_a = signal.butter(1, DEFAULT_HIGH_HZ, fs=FPS)
    passed_high = signal.filtfilt(high_b, high_a, clip, axis=0, method="gust")
    passed_low = signal.filtfilt(low_b, low_a, clip, axis=0, method="gust")
    expected = clip.mean(axis=0) + passed_high - passed_low
    np.testing.assert_allclose(output, expected, atol=2e-3)


def test_colour_is_magnified_per_channel():
    rng = np.random.default_rng(2)
    clip = (rng.random((16, 37, 53, 3)) * 255).astype(np.uint8)
    colour = magnify(clip, FPS)
    for channel in range(3):
        gray = magnify(np.ascontiguousarray(clip[..., channel]), FPS)
        np.testing.assert_allclose(colour[..., channel], gray, atol=1e-3)


@pytest.mark.parametrize("colour", [False, True], ids=["gray", "colour"])
@pytest.mark.parametrize("height, width", [(37, 53), (53, 37), (31, 64)])
def test_odd_frame_sizes_are_magnified(height, width, colour):
    texture = periodic_texture(64, seed=3)
    clip = translating_clip(texture, sinusoid(32, IN_BAND_HZ, 0.5))[:, :height, :width]
    if colour:
        clip = np.stack([clip, 0.5 * clip, 255 - clip], axis=-1)
    output = magnify(to_uint8(clip), FPS)
    assert output.shape == clip.shape and output.dtype == np.float32
    assert np.isfinite(output).all()
    temporal_change_in = np.abs(np.diff(clip, axis=0)).mean()
    temporal_change_out = np.abs(np.diff(output, axis=0)).mean()
    assert temporal_change_out > 2 * temporal_change_in


def test_level_amplification_follows_the_mit_formula():
    # 480x640: lambda = 800/3 at the residual (level 6), halved per finer level;
    # delta = 16/8/9; level 1: lambda = 800/3/32 = 8.33 -> 2*(8.33/delta/8 - 1) = 7.375 < 8.
    level_alphas = level_amplifications((480, 640), 7, alpha=8.0, lambda_c=16.0)
    assert level_alphas[0] == 0 and level_alphas[-1] == 0
    assert level_alphas[1] == pytest.approx(2 * (800 / 3 / 32 / (16 / 8 / 9) / 8 - 1))
    assert level_alphas[2:6] == [8.0] * 4
    # a longer cut-off wavelength attenuates more levels, never below 0
    attenuated = level_amplifications((480, 640), 7, alpha=8.0, lambda_c=200.0)
    assert all(0 <= a <= b for a, b in zip(attenuated, level_alphas, strict=True))
    assert attenuated[1] == 0


def test_auto_depth_keeps_at_least_8_px_at_the_coarsest_level():
    for frame_hw in [(480, 640), (37, 53), (128, 128), (29, 1000)]:
        depth = auto_pyramid_depth(frame_hw)
        assert min(pyramid_sizes(frame_hw, depth)[-1]) >= 8
        assert min(pyramid_sizes(frame_hw, depth + 1)[-1]) < 8


# ---------------------------------------------------------------- motion: in band, out of band


def test_in_band_subpixel_translation_is_magnified_at_least_4_5x():
    assert motion_gain(IN_BAND_HZ, alpha=8.0) >= 4.5


@pytest.mark.parametrize("temporal_filter", ["iir", "butterworth"])
def test_other_filters_magnify_in_band_translation(temporal_filter):
    assert motion_gain(IN_BAND_HZ, alpha=8.0, temporal_filter=temporal_filter) >= 4.0


@pytest.mark.parametrize("temporal_filter", ["ideal", "butterworth"])
def test_motion_above_the_band_is_not_amplified(temporal_filter):
    assert motion_gain(ABOVE_BAND_HZ, alpha=8.0, temporal_filter=temporal_filter) < 1.5


def test_motion_below_the_band_is_not_amplified():
    with pytest.warns(UserWarning, match="drops the first FFT bin"):
        gain = motion_gain(IN_BAND_HZ, alpha=8.0, low_hz=15.0, high_hz=40.0)
    assert gain < 1.5


# ---------------------------------------------------------------- the onset -> apex rise


@settings(max_examples=12, deadline=None)
@given(
    bump_frames=st.integers(40, 100),
    frames_before=st.integers(0, 30),
    frames_after=st.integers(0, 30),
    alpha=st.sampled_from([4.0, 8.0, 16.0]),
)
def test_the_default_band_keeps_the_onset_to_apex_rise(
    bump_frames, frames_before, frames_after, alpha
):
    profile, onset, apex = raised_cosine_expression(bump_frames, frames_before, frames_after)
    clip = expression_clip(profile)
    output = magnify(clip, FPS, alpha=alpha)
    assert apex_minus_onset_gain(clip, output, onset, apex) >= 0.8 * (1 + alpha)


def test_a_low_cut_above_the_first_bin_loses_the_rise():
    # 60 frames at 200 fps: bins 3.33 Hz apart; a 4 Hz low cut drops the bin carrying the rise.
    profile, onset, apex = raised_cosine_expression(60, 0, 0)
    clip = expression_clip(profile)
    with pytest.warns(UserWarning, match="drops the first FFT bin"):
        output = magnify(clip, FPS, alpha=8.0, low_hz=4.0)
    assert apex_minus_onset_gain(clip, output, onset, apex) < 0.5 * (1 + 8.0)


# ---------------------------------------------------------------- filter-only control


def test_filter_only_does_not_amplify_in_band_motion():
    assert motion_gain(IN_BAND_HZ, mode="filter_only") == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("temporal_filter", TEMPORAL_FILTERS)
def test_filter_only_removes_out_of_band_temporal_noise(temporal_filter):
    rng = np.random.default_rng(4)
    frame = periodic_texture(48, seed=2)
    noise = rng.normal(0.0, 4.0, size=(64, 48, 48))
    clip = (frame + noise).astype(np.float32)
    output = magnify(clip, FPS, mode="filter_only", temporal_filter=temporal_filter)
    residual_noise = output - frame
    # white noise spreads over 0..100 Hz; a 0.5..20 Hz band keeps about a fifth of it
    assert residual_noise.var() < 0.5 * noise.var()


def test_ideal_filter_only_keeps_the_mean_and_has_gain_one_in_the_band():
    # MIT's ideal filter keeps only positive bins: the amplitude would read 5 there.
    clip = 100 + sinusoid(64, IN_BAND_HZ, 10.0)[:, None, None] * np.ones((1, 4, 4))
    output = magnify(clip, FPS, mode="filter_only")
    assert oscillation_amplitude(output[:, 0, 0], IN_BAND_HZ) == pytest.approx(10.0, rel=1e-4)
    np.testing.assert_allclose(output.mean(axis=0), clip.mean(axis=0), rtol=1e-5)


def test_butterworth_cut_offs_are_in_hz():
    # Zero-phase first order: gain |H_high|^2 - |H_low|^2, about 0.5 at high_hz. MIT's cut-offs
    # (half the nominal Hz) would give about 0.2 here.
    n_frames = 400
    clip = 100 + sinusoid(n_frames, DEFAULT_HIGH_HZ, 10.0)[:, None, None] * np.ones((1, 2, 2))
    output = magnify(clip, FPS, mode="filter_only", temporal_filter="butterworth")
    middle = slice(100, 300)
    in_amplitude = oscillation_amplitude(clip[middle, 0, 0], DEFAULT_HIGH_HZ)
    out_amplitude = oscillation_amplitude(output[middle, 0, 0], DEFAULT_HIGH_HZ)
    assert out_amplitude / in_amplitude == pytest.approx(0.5, abs=0.05)


# ---------------------------------------------------------------- uint8 conversion


def test_to_uint8_rounds_and_saturates():
    eps = np.finfo(np.float32).eps
    frames = np.array([2.5 - 2 * eps * 2.5, 2.6, 2.4, 254.6, 255.4, 300.0, -0.4, -7.0], np.float32)
    np.testing.assert_array_equal(to_uint8(frames), [2, 3, 2, 255, 255, 255, 0, 0])
    assert to_uint8(frames).dtype == np.uint8


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-50.0, 300.0, width=32), min_size=1, max_size=20))
def test_to_uint8_is_never_more_than_half_a_level_off_inside_the_range(values):
    frames = np.array(values, dtype=np.float32)
    converted = to_uint8(frames).astype(np.float64)
    assert np.all(np.abs(converted - np.clip(frames, 0, 255)) <= 0.5)


# ---------------------------------------------------------------- bad input


GOOD_CLIP = np.zeros((16, 40, 40), np.uint8)


@pytest.mark.parametrize(
    "clip, arguments, message",
    [
        (GOOD_CLIP[:3], {}, "at least 4"),
        (np.full((16, 40, 40), np.nan, np.float32), {}, "NaN or infinite"),
        (np.zeros((16, 40, 40, 2)), {}, "gray or"),
        (GOOD_CLIP.astype(bool), {}, "dtype"),
        (GOOD_CLIP, {"high_hz": 100.0}, "fps/2"),
        (GOOD_CLIP, {"low_hz": 0.0}, "0 < low_hz"),
        (GOOD_CLIP, {"low_hz": 30.0, "high_hz": 20.0}, "low_hz < high_hz"),
        (GOOD_CLIP, {"temporal_filter": "gaussian"}, "unknown temporal_filter"),
        (GOOD_CLIP, {"mode": "amplify"}, "unknown mode"),
        (GOOD_CLIP, {"alpha": -1.0}, "alpha"),
        (GOOD_CLIP, {"alpha": float("nan")}, "alpha"),
        (GOOD_CLIP, {"levels": 2}, "levels=2"),
        (GOOD_CLIP, {"levels": 9}, "levels=9"),
        (GOOD_CLIP, {"temporal_filter": "iir", "r1": 0.05, "r2": 0.4}, "r2 < r1"),
        (GOOD_CLIP[:, :20, :20], {}, "too small"),
        (GOOD_CLIP[:4], {"low_hz": 10.0, "high_hz": 20.0}, "no FFT bin"),
    ],
)
def test_bad_input_raises_a_clear_value_error(clip, arguments, message):
    with pytest.raises(ValueError, match=message):
        magnify(clip, FPS, **arguments)


def test_bad_fps_raises_a_clear_value_error():
    with pytest.raises(ValueError, match="fps"):
        magnify(GOOD_CLIP, 0.0)
