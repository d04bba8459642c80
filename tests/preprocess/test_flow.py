from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import ndimage

from conftest import SHARED
from mer.data import synth
from mer.preprocess import flow

FLOWGT = SHARED / "realdata" / "flowgt"


def textured_image(size: int = 96, seed: int = 5) -> np.ndarray:
    """Smooth random texture, gray levels around 128 (float, 0..255 scale)."""
    noise = ndimage.gaussian_filter(np.random.default_rng(seed).standard_normal((size, size)), 2.0)
    return 128 + 30 * noise / noise.std()


def translated(image: np.ndarray, u: float, v: float) -> np.ndarray:
    """image moved by (u, v) px with a Fourier shift, so that image(y, x) = result(y + v, x + u).

    Exact for sub-pixel shifts (cv2.remap would quantise positions to 1/32 px)."""
    return np.fft.ifft2(ndimage.fourier_shift(np.fft.fft2(image), (v, u))).real


def synthetic_pairs(n_pairs: int = 3, seed: int = 11) -> list[tuple]:
    """(onset, apex, truth_uv) of one clip per subject from the embedded generator, 128x128."""
    # The sub-pixel world (128 px PNG) in which these error bounds were measured.
    params = synth.SynthParams.from_dict(
        synth.SUBPIXEL
        | dict(
            seed=seed,
            subjects=n_pairs,
            clips_per_subject=1,
            frames_min=20,
            frames_max=24,
            amplitude_px=0.8,
            amplitude_jitter=0.0,
            noise_sigma=1.0,
            # The saved flow_uv leaves the eyelid's motion out: a blink would make the truth wrong.
            blink_prob=0.0,
        )
    )
    pairs, seen = [], set()
    for plan in synth.plan_dataset(params):
        if plan.subject not in seen:
            seen.add(plan.subject)
            clip = synth.render_clip(plan, params)
            frames = clip["frames"]
            onset = frames[plan.onset - plan.first_frame]
            apex = frames[plan.apex - plan.first_frame]
            pairs.append((onset, apex, clip["flow_uv"]))
    return pairs


def write_flo(path: Path, flow_uv: np.ndarray) -> None:
    """Middlebury .flo writer, independent of the reader under test."""
    height, width = flow_uv.shape[:2]
    header = np.array([202021.25], "<f4").tobytes() + np.array([width, height], "<i4").tobytes()
    path.write_bytes(header + flow_uv.astype("<f4").tobytes())


def test_default_method_recovers_synthetic_micro_motion():
    pairs = synthetic_pairs()
    flow_errors = [flow.endpoint_error(flow.onset_apex_flow(o, a), t) for o, a, t in pairs]
    zero_errors = [flow.endpoint_error(np.zeros_like(t), t) for _, _, t in pairs]
    # Measured with opencv-contrib 5.0 (DeepFlow, intensity_scale 0.1): 0.023 px here, and
    # 0.020-0.030 px over seeds 10-19 (zero flow 0.10-0.14). The bound leaves ~1.7x headroom
    # for other OpenCV builds; a wrong sign or axis gives > 0.15 px.
    assert np.mean(flow_errors) < 0.04
    # Measured ratio to zero flow 0.19-0.27 over those seeds.
    assert np.mean(flow_errors) < 0.4 * np.mean(zero_errors)


@pytest.mark.parametrize(("u", "v"), [(0.6, -0.4), (-1.5, 0.5)])
@pytest.mark.parametrize("method", flow.METHODS)
def test_uniform_translation_gives_its_displacement_with_the_right_sign(method, u, v):
    onset = textured_image()
    apex = translated(onset, u, v)
    flow_uv = flow.onset_apex_flow(onset, apex, method)
    inner = flow_uv[16:-16, 16:-16]  # the Fourier shift wraps around at the borders
    error = np.sqrt(((inner - np.array([u, v])) ** 2).sum(-1)).mean()
    # Measured mean EPE on these images: deepflow, dis, farneback <= 0.012 px, tvl1 <= 0.054
    # (it biases sub-pixel shifts by ~0.04). Swapped or negated components would give >= 0.7.
    tolerance = {"deepflow": 0.05, "tvl1": 0.15, "dis": 0.1, "farneback": 0.1}[method]
    assert error < tolerance, (method, np.median(inner.reshape(-1, 2), axis=0))


def flying_chairs_pairs() -> list[tuple]:
    if not FLOWGT.is_dir():
        pytest.skip(f"no FlyingChairs pairs at {FLOWGT} (only in the development checkout)")
    pairs = []
    for truth_path in sorted(FLOWGT.glob("*-gt.flo")):
        stem = truth_path.name.removesuffix("-gt.flo")
        onset, apex = (
            cv2.cvtColor(cv2.imread(str(FLOWGT / f"{stem}-img{i}.ppm")), cv2.COLOR_BGR2GRAY)
            for i in (0, 1)
        )
        pairs.append((onset, apex, flow.read_flo(truth_path)))
    if not pairs:
        pytest.skip(f"no .flo files in {FLOWGT}")
    return pairs


def test_flow_sign_and_axes_agree_with_flying_chairs_ground_truth():
    pairs = flying_chairs_pairs()
    flows = [flow.onset_apex_flow(onset, apex) for onset, apex, _ in pairs]
    truths = [truth for _, _, truth in pairs]

    def mean_error(candidates):
        return np.mean([flow.endpoint_error(f, t) for f, t in zip(candidates, truths, strict=True)])

    ours = mean_error(flows)
    zero = mean_error([np.zeros_like(t) for t in truths])
    # Measured on the three pairs: 1.99 px against 3.95 px for zero flow (ratio 0.50; the
    # motions are large, up to 110 px), 5.03 px with u and v swapped, 6.54 px negated.
    assert ours < 0.6 * zero
    assert mean_error([f[..., ::-1] for f in flows]) > 2 * ours
    assert mean_error([-f for f in flows]) > 2 * ours


def uint8_pair(size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    onset = textured_image(size)
    apex = translated(onset, 0.5, 0.3)
    return (np.rint(image).clip(0, 255).astype(np.uint8) for image in (onset, apex))


@pytest.mark.parametrize("method", flow.METHODS)
def test_float_input_gives_the_same_flow_as_uint8(method):
    onset, apex = uint8_pair()
    from_uint8 = flow.onset_apex_flow(onset, apex, method)
    from_float = flow.onset_apex_flow(onset.astype(np.float64), apex.astype(np.float32), method)
    np.testing.assert_allclose(from_float, from_uint8, atol=1e-4)


def test_float_input_reaches_tvl1_on_the_scale_opencv_gives_uint8():
    # OpenCV's TV-L1 reads float images as 0..1 but uint8 as 0..255: passed through as they
    # come, float gray levels would change its weights (flows up to 190 px apart, measured on
    # a 256x256 face pair).
    onset, apex = uint8_pair()
    opencv_on_uint8 = cv2.optflow.DualTVL1OpticalFlow_create().calc(onset, apex, None)
    ours_on_float = flow.onset_apex_flow(onset.astype(float), apex.astype(float), "tvl1")
    np.testing.assert_allclose(ours_on_float, opencv_on_uint8, atol=1e-4)


def test_flow_does_not_depend_on_the_opencv_thread_count():
    onset = textured_image(64)
    apex = translated(onset, 0.4, 0.2)
    threads = cv2.getNumThreads()
    try:
        cv2.setNumThreads(1)
        one_thread = flow.onset_apex_flow(onset, apex)
        cv2.setNumThreads(2)
        two_threads = flow.onset_apex_flow(onset, apex)
    finally:
        cv2.setNumThreads(threads)
    assert np.array_equal(one_thread, two_threads)


def test_output_is_float32_h_w_2():
    onset = textured_image(40)[:, :36]
    flow_uv = flow.onset_apex_flow(onset, onset, "farneback")
    assert flow_uv.shape == (40, 36, 2) and flow_uv.dtype == np.float32


def test_parameters_override_the_defaults_and_are_coerced_to_their_type():
    assert flow.resolve_params("farneback", winsize=21.0)["winsize"] == 21
    assert isinstance(flow.resolve_params("farneback", winsize=21.0)["winsize"], int)
    params = flow.default_params("dis")
    params["finest_scale"] = 99  # a copy: the module's defaults stay as they are
    assert flow.default_params("dis")["finest_scale"] == 0
    # 128 px: on smaller images DIS's pyramid is too short for finest_scale to matter.
    onset = textured_image(128)
    apex = translated(onset, 0.5, 0.0)
    assert not np.array_equal(
        flow.onset_apex_flow(onset, apex, "dis"),
        flow.onset_apex_flow(onset, apex, "dis", finest_scale=2),
    )


def test_every_method_has_a_plain_dict_of_defaults():
    for method in flow.METHODS:
        params = flow.default_params(method)
        assert isinstance(params, dict)
        assert all(isinstance(v, bool | int | float) for v in params.values())
    assert flow.DEFAULT_METHOD in flow.METHODS


IMAGE = np.full((32, 32), 100, np.uint8)


@pytest.mark.parametrize(
    ("onset", "apex", "kwargs", "message"),
    [
        (IMAGE, IMAGE[:, :31], {}, "differ in shape"),
        (IMAGE[..., None], IMAGE[..., None], {}, "2-D"),
        (IMAGE.astype(float) * np.nan, IMAGE, {}, "NaN"),
        (IMAGE.astype(np.int32), IMAGE, {}, "dtype"),
        (IMAGE / 255.0, IMAGE, {}, "0..1"),
        (IMAGE, IMAGE, {"method": "lucas-kanade"}, "allowed: deepflow"),
        (IMAGE, IMAGE, {"method": "dis", "window": 5}, "unknown parameter 'window'"),
        (IMAGE, IMAGE, {"method": "farneback", "levels": 2.5}, "integer"),
        (IMAGE, IMAGE, {"method": "farneback", "gaussian_window": "yes"}, "true or false"),
        (IMAGE, IMAGE, {"intensity_scale": 0}, "intensity_scale"),
        (IMAGE[:6, :6], IMAGE[:6, :6], {"method": "dis"}, "patch_size"),
    ],
)
def test_bad_inputs_raise_a_value_error_that_names_the_problem(onset, apex, kwargs, message):
    with pytest.raises(ValueError, match=message):
        flow.onset_apex_flow(onset, apex, **kwargs)


def test_unknown_method_in_default_params_is_named():
    with pytest.raises(ValueError, match="'optical'.*deepflow, tvl1, dis, farneback"):
        flow.default_params("optical")


def test_read_flo_round_trip(tmp_path):
    flow_uv = np.random.default_rng(0).normal(size=(5, 7, 2)).astype(np.float32)
    path = tmp_path / "pair.flo"
    write_flo(path, flow_uv)
    read = flow.read_flo(path)
    assert read.shape == (5, 7, 2) and read.dtype == np.float32
    np.testing.assert_array_equal(read, flow_uv)


def test_read_flo_names_the_file_when_truncated_or_not_a_flo(tmp_path):
    path = tmp_path / "cut.flo"
    write_flo(path, np.zeros((5, 7, 2), np.float32))
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(ValueError, match=r"cut\.flo.*truncated"):
        flow.read_flo(path)
    path.write_bytes(path.read_bytes()[:8])
    with pytest.raises(ValueError, match=r"cut\.flo.*truncated"):
        flow.read_flo(path)
    other = tmp_path / "image.flo"
    other.write_bytes(b"P5\n7 5\n255\n" + bytes(35))
    with pytest.raises(ValueError, match=r"image\.flo.*not a Middlebury"):
        flow.read_flo(other)


def test_endpoint_error_is_the_mean_vector_distance_over_the_mask():
    truth = np.zeros((2, 2, 2))
    estimate = np.zeros((2, 2, 2))
    estimate[0, 0] = (3.0, 4.0)
    assert flow.endpoint_error(estimate, truth) == pytest.approx(5.0 / 4)
    mask = np.array([[True, False], [False, False]])
    assert flow.endpoint_error(estimate, truth, mask) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="no pixel"):
        flow.endpoint_error(estimate, truth, np.zeros((2, 2), bool))
    with pytest.raises(ValueError, match="H, W, 2"):
        flow.endpoint_error(estimate, truth[..., :1])
