"""EVM beyond its linear bound: measured gain and artefacts against displacement and alpha.

Synthetic clips with known motion: a smooth-textured 312 x 259 face-like image translated
inside an elliptic "skin patch" (a Gaussian window, as an action unit moves skin) by d px
along x with a raised-cosine rise over 30 frames of a 60-frame clip at 200 fps, then held.
Each clip is magnified with mer.preprocess.evm.magnify (ideal filter 0.5-20 Hz, lambda_c 16,
auto depth, as config.yaml), and DeepFlow (mer.preprocess.flow) measures onset->apex:
- gain: the patch centre's measured displacement / d (the ideal linear EVM gives 1 + alpha
  on the amplified bands only, so less than 1 + alpha overall);
- artefact: RMS difference (gray levels) between the magnified apex and the unmagnified
  apex warped to the displacement the flow measured, i.e. what is not explained by a clean
  larger motion (ringing, blur, overshoot), inside the patch.
Prints the table and writes docs/evm_bound.png.

Run: python benchmarks/bench_evm_bound.py   (about a minute on 2 cores)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

from mer.preprocess.evm import magnify
from mer.preprocess.flow import onset_apex_flow
from mer.preprocess.pyramid import auto_pyramid_depth, level_amplifications

HEIGHT, WIDTH, FRAMES, RISE, FPS = 312, 259, 60, 30, 200.0
DISPLACEMENTS_PX = (0.1, 0.3, 1.0, 2.0, 5.0)
ALPHAS = (0, 2, 4, 8, 16, 32)


def textured_image(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    texture = ndimage.gaussian_filter(rng.standard_normal((HEIGHT, WIDTH)), 3.0)
    return 128 + 30 * texture / texture.std()


def clip_with_motion(image: np.ndarray, displacement_px: float) -> tuple[np.ndarray, np.ndarray]:
    """(T, H, W) float clip whose patch moves by displacement_px along x; the patch window."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(float)
    window = np.exp(-(((yy - HEIGHT / 2) / 40) ** 2 + ((xx - WIDTH / 2) / 40) ** 2) / 2)
    coefficients = ndimage.spline_filter(image, order=3)
    t = np.arange(FRAMES)
    profile = np.where(t < RISE, 0.5 * (1 - np.cos(np.pi * t / RISE)), 1.0)
    clip = np.stack(
        [
            ndimage.map_coordinates(
                coefficients, [yy, xx - a * displacement_px * window], order=3, prefilter=False
            )
            for a in profile
        ]
    )
    return clip.astype(np.float32), window


def measure(image: np.ndarray, displacement_px: float, alpha: float) -> tuple[float, float]:
    clip, window = clip_with_motion(image, displacement_px)
    magnified = magnify(clip, FPS, alpha=alpha, low_hz=0.5, high_hz=20.0)
    onset, apex = magnified[0], magnified[RISE]
    flow_uv = onset_apex_flow(onset, apex)
    centre = window > 0.9
    moved = float(np.median(flow_uv[..., 0][centre]))
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(float)
    clean = ndimage.map_coordinates(clip[0], [yy, xx - moved * window], order=3)
    patch = window > 0.5
    artefact = float(np.sqrt(np.mean((apex - clean)[patch] ** 2)))
    return moved / displacement_px, artefact


def main(out_png: str = "docs/evm_bound.png") -> None:
    depth = auto_pyramid_depth((HEIGHT, WIDTH))
    print(f"{HEIGHT}x{WIDTH} px, {depth} levels; per-level alpha (finest first), lambda_c 16:")
    for alpha in ALPHAS:
        levels = level_amplifications((HEIGHT, WIDTH), depth, alpha, 16.0)
        print(f"  alpha {alpha:>2}: " + " ".join(f"{a:5.1f}" for a in levels))
    image = textured_image()
    gains = np.zeros((len(DISPLACEMENTS_PX), len(ALPHAS)))
    artefacts = np.zeros_like(gains)
    print("\nd (px) | alpha | (1+alpha)d | measured gain | artefact RMS (gray levels)")
    for i, d in enumerate(DISPLACEMENTS_PX):
        for j, alpha in enumerate(ALPHAS):
            gains[i, j], artefacts[i, j] = measure(image, d, alpha)
            print(f"{d:6.1f} | {alpha:5} | {(1 + alpha) * d:10.1f} | {gains[i, j]:13.2f} | "
                  f"{artefacts[i, j]:.2f}")  # fmt: skip
    figure(gains, artefacts, out_png)
    print(f"\nwrote {out_png}")


def figure(gains: np.ndarray, artefacts: np.ndarray, out_png: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8))
    left, right = fig.subplots(1, 2)
    for i, d in enumerate(DISPLACEMENTS_PX):
        left.plot(ALPHAS, gains[i], marker="o", label=f"d = {d} px")
        right.plot(ALPHAS, artefacts[i], marker="o", label=f"d = {d} px")
    left.plot(ALPHAS, [1 + a for a in ALPHAS], "k:", label="1 + alpha")
    left.set(xlabel="alpha", ylabel="measured gain (flow / d)", yscale="log")
    right.set(xlabel="alpha", ylabel="artefact RMS (gray levels)")
    left.legend(fontsize=7)
    fig.suptitle(f"Linear EVM on {HEIGHT}x{WIDTH} px, lambda_c 16, DeepFlow", fontsize=9)
    fig.tight_layout()
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=90)


if __name__ == "__main__":
    main(*sys.argv[1:])
