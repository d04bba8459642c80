"""Dense onset->apex optical flow through OpenCV contrib, plus Middlebury .flo reading and EPE.

Convention everywhere in mer: flow (H, W, 2) = (u, v) from onset to apex means
onset(y, x) ~ apex(y + v, x + u); u points right, v points down, units are pixels.

Inputs are gray images on the 0..255 scale, uint8 or float. Each OpenCV method wants its own
form, which this module hides (measured with opencv-contrib 5.0):
- DeepFlow and Farneback read float32 on the 0..255 scale exactly as they read uint8, so floats
  (e.g. magnified frames) go in unrounded and keep their sub-gray-level detail.
- TV-L1 reads uint8 as 0..255 but float as 0..1, so floats are divided by 255 for it.
- DIS accepts only uint8: floats are rounded and saturated (truncation would bias by -0.5).
Float images whose values all lie in [0, 1] are refused: read on the 0..255 scale they are
almost black and would give wrong flow without an error.

Results do not depend on OpenCV's thread count (bit-identical at 1 and 2 threads, measured), so
this module leaves cv2.setNumThreads to the caller: the CLI sets it from the job's threads.

Why DeepFlow is the default, with numbers, is in benchmarks/bench_flow.py's output and
docs/preprocessing.md.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

METHODS = ("deepflow", "tvl1", "dis", "farneback")
DEFAULT_METHOD = "deepflow"

# Each method's parameters and their defaults; names follow OpenCV's setters in snake_case so
# that OpenCV's documentation applies unchanged (TV-L1's `lambda` becomes `lambda_`).
_DEFAULT_PARAMS: dict[str, dict] = {
    # OpenCV exposes none of DeepFlow's weights; scaling the gray levels down weakens its
    # absolute data term against smoothness. 0.1: tuned on synthetic micro-motion
    # (docs/preprocessing.md, "DeepFlow's intensity scale").
    "deepflow": {"intensity_scale": 0.1},
    # OpenCV's defaults.
    "tvl1": {
        "tau": 0.25,
        "lambda_": 0.15,
        "theta": 0.3,
        "scales_number": 5,
        "warpings_number": 5,
        "epsilon": 0.01,
        "inner_iterations": 30,
        "outer_iterations": 10,
        "scale_step": 0.8,
        "gamma": 0.0,
        "median_filtering": 5,
    },
    # OpenCV's "medium" preset, except finest_scale 0 (full resolution; the preset stops at 1):
    # it more than halves the error inside the moving region on clean sub-pixel motion
    # (0.089 -> 0.040 px) at about 4x the time (6 -> 24 ms per 256x256 pair).
    "dis": {
        "finest_scale": 0,
        "patch_size": 8,
        "patch_stride": 3,
        "gradient_descent_iterations": 25,
        "variational_refinement_iterations": 5,
        "variational_refinement_alpha": 20.0,
        "variational_refinement_delta": 5.0,
        "variational_refinement_gamma": 10.0,
        "use_mean_normalization": True,
        "use_spatial_propagation": True,
    },
    # The values of OpenCV's Farneback sample. Larger windows lower the whole-image EPE on
    # micro-motion only by flattening the motion itself (the moving region's error doubles).
    "farneback": {
        "pyr_scale": 0.5,
        "levels": 3,
        "winsize": 15,
        "iterations": 3,
        "poly_n": 5,
        "poly_sigma": 1.2,
        "gaussian_window": False,
    },
}

# TV-L1 and DIS parameter names -> the OpenCV setter that takes them.
_TVL1_SETTERS = {
    "tau": "setTau",
    "lambda_": "setLambda",
    "theta": "setTheta",
    "scales_number": "setScalesNumber",
    "warpings_number": "setWarpingsNumber",
    "epsilon": "setEpsilon",
    "inner_iterations": "setInnerIterations",
    "outer_iterations": "setOuterIterations",
    "scale_step": "setScaleStep",
    "gamma": "setGamma",
    "median_filtering": "setMedianFiltering",
}
_DIS_SETTERS = {
    "finest_scale": "setFinestScale",
    "patch_size": "setPatchSize",
    "patch_stride": "setPatchStride",
    "gradient_descent_iterations": "setGradientDescentIterations",
    "variational_refinement_iterations": "setVariationalRefinementIterations",
    "variational_refinement_alpha": "setVariationalRefinementAlpha",
    "variational_refinement_delta": "setVariationalRefinementDelta",
    "variational_refinement_gamma": "setVariationalRefinementGamma",
    "use_mean_normalization": "setUseMeanNormalization",
    "use_spatial_propagation": "setUseSpatialPropagation",
}

FLO_MAGIC = 202021.25  # Middlebury .flo tag: the float32 whose bytes read "PIEH"


def default_params(method: str) -> dict:
    """The method's parameters with their default values (a fresh plain dict)."""
    _check_method(method)
    return dict(_DEFAULT_PARAMS[method])


def resolve_params(method: str, **method_params) -> dict:
    """Defaults overridden by method_params, each coerced to the default's type."""
    params = default_params(method)
    for name, value in method_params.items():
        if name not in params:
            raise ValueError(
                f"unknown parameter {name!r} for flow method {method!r}; "
                f"allowed: {', '.join(params) or '(none)'}"
            )
        params[name] = _coerce(method, name, value, params[name])
    return params


def check_available(method: str) -> None:
    """Refuse, naming the fix, a method that this OpenCV build lacks (DeepFlow and TV-L1 live
    in the contrib module cv2.optflow)."""
    _check_method(method)
    if method in ("deepflow", "tvl1") and not hasattr(cv2, "optflow"):
        raise ValueError(
            f"flow method {method!r} needs OpenCV's contrib module cv2.optflow, which OpenCV "
            f"{cv2.__version__} here lacks; install opencv-contrib-python (envs/mer.yaml)."
        )


def onset_apex_flow(
    onset: np.ndarray, apex: np.ndarray, method: str = DEFAULT_METHOD, **method_params
) -> np.ndarray:
    """Dense flow (H, W, 2) float32 from onset to apex: onset(y, x) ~ apex(y + v, x + u).

    Inputs are gray (H, W) images on the 0..255 scale, uint8 or float; float is rounded and
    saturated to uint8 only where the OpenCV method needs 8-bit (DIS). method_params override
    default_params(method).
    """
    _check_method(method)
    params = resolve_params(method, **method_params)
    onset, apex = _check_pair(onset, apex)
    flow_uv = np.ascontiguousarray(_FLOW_BY_METHOD[method](onset, apex, params), np.float32)
    # A non-finite field would poison the flow image, the mask and every shard built from it.
    bad = int((~np.isfinite(flow_uv)).sum())
    if bad:
        raise ValueError(
            f"flow method {method!r} returned {bad} NaN or infinite value(s); try another "
            "flow.method or check the magnified frames"
        )
    return flow_uv


def read_flo(path: str | Path) -> np.ndarray:
    """Middlebury .flo file -> flow (H, W, 2) float32 (u, v), same convention as this module."""
    path = Path(path)
    data = path.read_bytes()
    if len(data) < 12:
        raise ValueError(f"{path}: truncated .flo file ({len(data)} bytes, header needs 12)")
    magic = np.frombuffer(data, dtype="<f4", count=1)[0]
    if magic != np.float32(FLO_MAGIC):
        raise ValueError(
            f"{path}: not a Middlebury .flo file (magic {magic!r}, expected {FLO_MAGIC})"
        )
    width, height = (int(n) for n in np.frombuffer(data, dtype="<i4", count=2, offset=4))
    if width <= 0 or height <= 0:
        raise ValueError(f"{path}: bad .flo size {width}x{height}")
    expected = 12 + width * height * 2 * 4
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "has trailing bytes"
        raise ValueError(
            f"{path}: {problem} .flo file: {len(data)} bytes, {width}x{height} flow needs "
            f"{expected}"
        )
    flow_uv = np.frombuffer(data, dtype="<f4", offset=12).reshape(height, width, 2)
    return flow_uv.astype(np.float32)


def endpoint_error(
    flow_uv: np.ndarray, truth_uv: np.ndarray, mask: np.ndarray | None = None
) -> float:
    """Mean end-point error |flow - truth| in pixels, over mask's True pixels if given."""
    flow_uv = np.asarray(flow_uv)
    truth_uv = np.asarray(truth_uv)
    if flow_uv.ndim != 3 or flow_uv.shape[-1] != 2 or flow_uv.shape != truth_uv.shape:
        raise ValueError(
            f"flow and truth must both be (H, W, 2); got {flow_uv.shape} and {truth_uv.shape}"
        )
    errors = np.sqrt(((flow_uv.astype(np.float64) - truth_uv) ** 2).sum(axis=-1))
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != errors.shape or mask.dtype != bool:
            raise ValueError(f"mask must be boolean {errors.shape}; got {mask.dtype} {mask.shape}")
        if not mask.any():
            raise ValueError("mask selects no pixel")
        errors = errors[mask]
    return float(errors.mean())


# ---------------------------------------------------------------------------------------------
# One function per method: (onset, apex, resolved params) -> flow


def _deepflow(onset: np.ndarray, apex: np.ndarray, params: dict) -> np.ndarray:
    scale = params["intensity_scale"]
    if scale <= 0:
        raise ValueError(f"intensity_scale of flow method 'deepflow' must be > 0; got {scale}")
    return _estimator("deepflow", ()).calc(
        _as_float32(onset) * np.float32(scale), _as_float32(apex) * np.float32(scale), None
    )


def _tvl1(onset: np.ndarray, apex: np.ndarray, params: dict) -> np.ndarray:
    # OpenCV's TV-L1 reads float images as 0..1 (and uint8 as 0..255).
    return _estimator("tvl1", tuple(params.items())).calc(
        _as_float32(onset) / np.float32(255), _as_float32(apex) / np.float32(255), None
    )


def _dis(onset: np.ndarray, apex: np.ndarray, params: dict) -> np.ndarray:
    if min(onset.shape) < params["patch_size"]:
        raise ValueError(
            f"DIS needs images at least patch_size={params['patch_size']} pixels on each side; "
            f"got {onset.shape}"
        )
    return _estimator("dis", tuple(params.items())).calc(_as_uint8(onset), _as_uint8(apex), None)


def _farneback(onset: np.ndarray, apex: np.ndarray, params: dict) -> np.ndarray:
    return cv2.calcOpticalFlowFarneback(
        _as_float32(onset),
        _as_float32(apex),
        None,
        params["pyr_scale"],
        params["levels"],
        params["winsize"],
        params["iterations"],
        params["poly_n"],
        params["poly_sigma"],
        cv2.OPTFLOW_FARNEBACK_GAUSSIAN if params["gaussian_window"] else 0,
    )


_FLOW_BY_METHOD = {"deepflow": _deepflow, "tvl1": _tvl1, "dis": _dis, "farneback": _farneback}


# ---------------------------------------------------------------------------------------------
# Helpers


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown flow method {method!r}; allowed: {', '.join(METHODS)}")


def _coerce(method: str, name: str, value, default):
    """Value in the default's type, so that config YAML (3 vs 3.0) hashes and runs alike."""
    where = f"parameter {name!r} of flow method {method!r}"
    if isinstance(default, bool):
        if not isinstance(value, bool | np.bool_):
            raise ValueError(f"{where} must be true or false; got {value!r}")
        return bool(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be a number; got {value!r}") from None
    if not np.isfinite(number) or isinstance(value, bool | np.bool_):
        raise ValueError(f"{where} must be a finite number; got {value!r}")
    if isinstance(default, int):
        if number != int(number):
            raise ValueError(f"{where} must be an integer; got {value!r}")
        return int(number)
    return number


def _check_pair(onset, apex) -> tuple[np.ndarray, np.ndarray]:
    onset = np.asarray(onset)
    apex = np.asarray(apex)
    for name, image in (("onset", onset), ("apex", apex)):
        if image.ndim != 2:
            raise ValueError(f"{name} must be a 2-D gray image (H, W); got shape {image.shape}")
        if image.size == 0:
            raise ValueError(f"{name} is empty: shape {image.shape}")
        if image.dtype != np.uint8 and not np.issubdtype(image.dtype, np.floating):
            raise ValueError(f"{name} must be uint8 or float (0..255); got dtype {image.dtype}")
        if image.dtype != np.uint8:
            if not np.isfinite(image).all():
                raise ValueError(f"{name} contains NaN or infinite values")
            # A 0..1 image would be read as almost black and give wrong flow without an error.
            if image.max() <= 1.0 and image.min() >= 0.0 and image.any():
                raise ValueError(
                    f"{name} looks like a 0..1 image (all values in [0, 1]); gray levels must "
                    "be on the 0..255 scale: multiply by 255"
                )
    if onset.shape != apex.shape:
        raise ValueError(f"onset and apex differ in shape: {onset.shape} vs {apex.shape}")
    return onset, apex


def _as_float32(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image, dtype=np.float32)


def _as_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=8)
def _estimator(method: str, params: tuple):
    """One OpenCV object per (method, parameters) and process: reuse saves its allocations."""
    if method == "deepflow":
        return cv2.optflow.createOptFlow_DeepFlow()
    if method == "tvl1":
        estimator = cv2.optflow.DualTVL1OpticalFlow_create()
        setters = _TVL1_SETTERS
    else:
        estimator = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        setters = _DIS_SETTERS
    for name, value in params:
        getattr(estimator, setters[name])(value)
    return estimator
