"""The synthetic faces of mer.data.synth: procedural gray faces, the action units' smooth
displacement fields, their temporal profile and the exact onset->apex flow they produce.
"""

from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------------------------------------
# Faces


def _face_geometry(rng: np.random.Generator) -> dict:
    """Landmarks in units of the frame size; every subject gets its own."""
    g = {
        "cx": 0.5 + rng.normal(0, 0.015),
        "cy": 0.52 + rng.normal(0, 0.015),
        "head_rx": 0.36 + rng.normal(0, 0.02),
        "head_ry": 0.45 + rng.normal(0, 0.02),
        "eye_y": 0.42 + rng.normal(0, 0.015),
        "eye_dx": 0.14 + rng.normal(0, 0.012),
        "eye_rx": 0.055 + rng.normal(0, 0.005),
        "eye_ry": 0.024 + rng.normal(0, 0.003),
        "brow_gap": 0.07 + rng.normal(0, 0.008),
        "brow_len": 0.085 + rng.normal(0, 0.008),
        "brow_thick": 0.016 + rng.normal(0, 0.002),
        "nose_y": 0.60 + rng.normal(0, 0.015),
        "mouth_y": 0.73 + rng.normal(0, 0.015),
        "mouth_hw": 0.11 + rng.normal(0, 0.012),
        "lip_thick": 0.022 + rng.normal(0, 0.003),
        "skin": rng.uniform(135, 185),
        "background": rng.uniform(35, 80),
        "light_angle": rng.uniform(0, 2 * np.pi),
        "light_strength": rng.uniform(0.05, 0.2),
    }
    g["brow_y"] = g["eye_y"] - g["brow_gap"]
    return g


def _soft_ellipse(yy, xx, cy, cx, ry, rx, edge):
    """1 inside, 0 outside, with an anti-aliased edge about `edge` pixels wide."""
    r = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
    return 1.0 / (1.0 + np.exp(np.clip((r - 1.0) * min(rx, ry) / edge, -50, 50)))


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    return yy, xx


def render_face(
    geometry: dict, size: int, texture_rng: np.random.Generator, eyelid_closure: float = 0.0
) -> np.ndarray:
    """Static gray face (float64, 0..255). Smooth edges keep sub-pixel warps meaningful."""
    from scipy import ndimage  # ~0.7 s to load: only where frames are rendered

    g = {
        k: v * size if k not in ("skin", "background", "light_angle", "light_strength") else v
        for k, v in geometry.items()
    }
    yy, xx = _grid(size)
    edge = 0.8
    light = (
        1.0
        + geometry["light_strength"]
        * (
            np.cos(geometry["light_angle"]) * (xx - g["cx"])
            + np.sin(geometry["light_angle"]) * (yy - g["cy"])
        )
        / size
    )
    # Skin texture: two bands of smoothed noise (pores, blotches) give flow something to track.
    texture = (
        ndimage.gaussian_filter(texture_rng.standard_normal((size, size)), 2.0) * 30
        + ndimage.gaussian_filter(texture_rng.standard_normal((size, size)), 0.8) * 9
    )
    skin = (geometry["skin"] + texture) * light
    image = np.full((size, size), geometry["background"]) * (0.9 + 0.2 * yy / size)

    def paint(mask, value):
        nonlocal image
        image = image * (1 - mask) + value * mask

    paint(_soft_ellipse(yy, xx, g["cy"], g["cx"], g["head_ry"], g["head_rx"], edge), skin)
    for side in (-1, 1):
        ex = g["cx"] + side * g["eye_dx"]
        # Brow: a slightly tilted dark band.
        brow = _soft_ellipse(
            yy + side * 0.12 * (xx - ex), xx, g["brow_y"], ex, g["brow_thick"], g["brow_len"], edge
        )
        paint(brow, skin * 0.4)
        eye = _soft_ellipse(yy, xx, g["eye_y"], ex, g["eye_ry"], g["eye_rx"], edge)
        paint(eye, 215.0)
        paint(
            eye
            * _soft_ellipse(yy, xx, g["eye_y"], ex, g["eye_ry"] * 0.95, g["eye_ry"] * 0.95, edge),
            55.0,
        )
        if eyelid_closure > 0:
            # The upper lid slides down over the eye; skin-coloured, slightly darker.
            lid_edge = g["eye_y"] - g["eye_ry"] + 2 * g["eye_ry"] * eyelid_closure
            lid = eye * 1.0 / (1.0 + np.exp(np.clip((yy - lid_edge) / edge, -50, 50)))
            paint(np.clip(lid * 1.3, 0, 1), skin * 0.85)
        # Nostril and cheek shading.
        paint(
            _soft_ellipse(
                yy, xx, g["nose_y"], g["cx"] + side * 0.035 * size, 0.012 * size, 0.018 * size, edge
            ),
            skin * 0.45,
        )
    paint(
        _soft_ellipse(yy, xx, g["nose_y"] - 0.07 * size, g["cx"], 0.09 * size, 0.022 * size, 2.0),
        skin * 1.08,
    )
    paint(
        _soft_ellipse(yy, xx, g["mouth_y"], g["cx"], g["lip_thick"] * 1.8, g["mouth_hw"], edge),
        skin * 0.7,
    )
    paint(
        _soft_ellipse(
            yy, xx, g["mouth_y"], g["cx"], g["lip_thick"] * 0.3, g["mouth_hw"] * 0.95, edge
        ),
        skin * 0.3,
    )
    return image


# ---------------------------------------------------------------------------------------------
# Expression fields


def _au_components(au: str, g: dict) -> list[tuple]:
    """(cx, cy, radius, du, dv) bumps of one action unit, in frame-size units; dv < 0 is up."""
    cx, ex = g["cx"], g["eye_dx"]
    parts = []
    for s in (-1, 1):
        if au == "1":  # inner brow raiser
            parts.append((cx + s * (ex - 0.045), g["brow_y"], 0.05, 0.0, -1.0))
        elif au == "2":  # outer brow raiser
            parts.append((cx + s * (ex + 0.045), g["brow_y"], 0.05, 0.0, -1.0))
        elif au == "4":  # brow lowerer: down and together
            parts.append((cx + s * (ex - 0.03), g["brow_y"], 0.055, -s * 0.6, 0.8))
        elif au == "6":  # cheek raiser
            parts.append((cx + s * ex, g["eye_y"] + 0.09, 0.06, 0.0, -0.5))
        elif au == "7":  # lid tightener: lower lid up
            parts.append((cx + s * ex, g["eye_y"] + 0.03, 0.035, 0.0, -1.0))
        elif au == "9":  # nose wrinkler
            parts.append((cx + s * 0.035, g["nose_y"] - 0.06, 0.045, 0.0, -0.9))
        elif au == "10":  # upper lip raiser
            parts.append((cx + s * 0.04, g["mouth_y"] - 0.03, 0.045, 0.0, -1.0))
        elif au == "12":  # lip corner puller: out and up
            parts.append((cx + s * g["mouth_hw"], g["mouth_y"], 0.05, s * 0.7, -0.7))
        elif au == "14":  # dimpler: corners tighten inwards
            parts.append((cx + s * g["mouth_hw"], g["mouth_y"], 0.045, -s * 0.9, 0.0))
        elif au == "15":  # lip corner depressor
            parts.append((cx + s * g["mouth_hw"], g["mouth_y"] + 0.01, 0.045, 0.0, 1.0))
    if au == "17":  # chin raiser
        parts.append((cx, g["mouth_y"] + 0.11, 0.07, 0.0, -1.0))
    elif au == "24":  # lip presser: lips meet
        parts += [
            (cx, g["mouth_y"] - 0.025, 0.05, 0.0, 0.7),
            (cx, g["mouth_y"] + 0.03, 0.05, 0.0, -0.7),
        ]
    elif au == "25":  # lips part
        parts.append((cx, g["mouth_y"] + 0.03, 0.06, 0.0, 1.0))
    return parts


def expression_field(
    geometry: dict,
    action_units,
    size: int,
    rng: np.random.Generator,
    one_sided_prob: float,
    extent: float = 1.0,
) -> np.ndarray:
    """Smooth displacement field (H, W, 2 = u, v) with a peak magnitude of exactly 1 px;
    `extent` scales the radius of every action unit's bump."""
    yy, xx = _grid(size)
    field_uv = np.zeros((size, size, 2))
    for au in action_units:
        for cx, cy, radius, du, dv in _au_components(au, geometry):
            # Per-clip jitter of position, extent and direction: no two clips move alike.
            cx, cy = cx + rng.normal(0, 0.008), cy + rng.normal(0, 0.008)
            radius *= rng.uniform(0.8, 1.2) * extent
            angle = rng.normal(0, np.deg2rad(12))
            du, dv = (
                du * np.cos(angle) - dv * np.sin(angle),
                du * np.sin(angle) + dv * np.cos(angle),
            )
            bump = np.exp(
                -(((xx - cx * size) ** 2 + (yy - cy * size) ** 2) / (2 * (radius * size) ** 2))
            )
            field_uv[..., 0] += du * bump
            field_uv[..., 1] += dv * bump
    if rng.random() < one_sided_prob:
        side = rng.choice([-1.0, 1.0])
        half = 1.0 / (1.0 + np.exp(-side * (xx - geometry["cx"] * size) / (0.03 * size)))
        field_uv *= half[..., None]
    peak = np.sqrt((field_uv**2).sum(-1)).max()
    return field_uv / peak if peak > 0 else field_uv


def temporal_profile(n_frames: int, onset: int, apex: int, offset: int) -> np.ndarray:
    """0 before onset, raised-cosine rise to 1 at apex, decay to 0 at offset (0-based indices)."""
    t = np.arange(n_frames, dtype=float)
    profile = np.zeros(n_frames)
    rise = (t > onset) & (t <= apex)
    profile[rise] = 0.5 * (1 - np.cos(np.pi * (t[rise] - onset) / max(apex - onset, 1)))
    fall = (t > apex) & (t < offset)
    profile[fall] = 0.5 * (1 + np.cos(np.pi * (t[fall] - apex) / max(offset - apex, 1)))
    return profile


def true_flow(
    field_uv: np.ndarray,
    amplitude_onset: float,
    amplitude_apex: float,
    drift_onset: np.ndarray,
    drift_apex: np.ndarray,
    iterations: int = 8,
) -> np.ndarray:
    """Exact forward flow onset->apex for frames rendered as face(q - a F(q) - g).

    A point p of the onset frame is face position b = p - a0 F(p) - g0; it appears in the apex
    frame at q with q - a1 F(q) - g1 = b, solved by fixed-point iteration (F is smooth and
    a1 |grad F| << 1, so it converges fast). Flow = q - p, convention I0(p) ~ I1(p + flow).
    """
    from scipy import ndimage  # ~0.7 s to load: only where frames are rendered

    size_y, size_x = field_uv.shape[:2]
    yy, xx = np.mgrid[0:size_y, 0:size_x].astype(np.float64)
    base_x = xx - amplitude_onset * field_uv[..., 0] - drift_onset[0]
    base_y = yy - amplitude_onset * field_uv[..., 1] - drift_onset[1]
    qx, qy = xx.copy(), yy.copy()
    for _ in range(iterations):
        fu = ndimage.map_coordinates(field_uv[..., 0], [qy, qx], order=1, mode="nearest")
        fv = ndimage.map_coordinates(field_uv[..., 1], [qy, qx], order=1, mode="nearest")
        qx = base_x + amplitude_apex * fu + drift_apex[0]
        qy = base_y + amplitude_apex * fv + drift_apex[1]
    return np.stack([qx - xx, qy - yy], axis=-1).astype(np.float32)
