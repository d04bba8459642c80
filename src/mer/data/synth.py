"""Embedded synthetic micro-expression dataset.

Procedural gray faces, one per subject, whose skin moves by a smooth, class-specific,
FACS-like displacement field that rises from onset to apex and decays to offset. Written in
the on-disk form of a real dataset (numbered frame images per clip + an annotation table) so
that it travels the same code path as CASME II or SAMM, with the exact onset->apex motion
saved beside it as ground truth.

Frame t is rendered by backward warping a static face image:
    frame_t(q) = face(q - a(t) * F(q) - g(t))
with F the unit-peak expression field, a(t) the temporal profile (0 at onset, amplitude at
apex) and g(t) the global head drift. Warping uses cubic B-splines (scipy map_coordinates),
not cv2.remap, which quantises positions to 1/32 px (docs/configuration.md, `synthetic`).
"""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from mer import __version__
from mer.data.frames import list_frames
from mer.data.synth_faces import (
    _face_geometry,
    _grid,
    expression_field,
    render_face,
    temporal_profile,
    true_flow,
)
from mer.settings import defaults

SCHEMA = defaults("synthetic")
# CASME II-like class priors (share of the 5-class set): the schema's default.
CASME2_PRIORS = SCHEMA["class_priors"]
# FACS action units used for each class; 'others' and 'repression' draw one variant per clip.
CLASS_ACTION_UNITS = {
    "surprise": [["1", "2"]],
    "happiness": [["12"], ["6", "12"]],
    "disgust": [["4", "9"], ["4"], ["9"]],
    "repression": [["14"], ["17"], ["24"], ["17", "24"]],
    "others": [["15"], ["7"], ["25"], ["10"]],
}
ANNOTATION_COLUMNS = ["subject", "video", "onset", "apex", "offset", "label", "fps", "action_units"]


@dataclass(frozen=True)
class SynthParams:
    """Every knob of the generator: the `synthetic` section, whose defaults and meanings are
    in the config schema (mer.settings). The defaults are calibrated to real CASME II clips
    (measured by `mer motion-card`); SUBPIXEL holds the earlier sub-pixel world
    (workflow/configs/synthetic-subpixel.yaml)."""

    seed: int = SCHEMA["seed"]
    subjects: int = SCHEMA["subjects"]
    clips_per_subject: int = SCHEMA["clips_per_subject"]
    frame_size: int = SCHEMA["frame_size"]
    frame_size_jitter: float = SCHEMA["frame_size_jitter"]
    aspect: float = SCHEMA["aspect"]
    image_format: str = SCHEMA["image_format"]
    jpeg_quality: int = SCHEMA["jpeg_quality"]
    fps: float = SCHEMA["fps"]
    frames_min: int = SCHEMA["frames_min"]
    frames_max: int = SCHEMA["frames_max"]
    apex_min: float = SCHEMA["apex_min"]
    apex_max: float = SCHEMA["apex_max"]
    apex_beta: float = SCHEMA["apex_beta"]
    amplitude_px: float = SCHEMA["amplitude_px"]
    amplitude_jitter: float = SCHEMA["amplitude_jitter"]
    amplitude_spread: float = SCHEMA["amplitude_spread"]
    noise_sigma: float = SCHEMA["noise_sigma"]
    drift_px: float = SCHEMA["drift_px"]
    drift_spread: float = SCHEMA["drift_spread"]
    flicker: float = SCHEMA["flicker"]
    blink_prob: float = SCHEMA["blink_prob"]
    one_sided_prob: float = SCHEMA["one_sided_prob"]
    expression_extent: float = SCHEMA["expression_extent"]
    class_priors: dict = field(default_factory=lambda: dict(SCHEMA["class_priors"]))

    @classmethod
    def from_dict(cls, values: dict) -> SynthParams:
        return cls(**values)


# The earlier, sub-pixel world: 128 px square PNG frames, 0.3 px at apex (+-30 %), apex at
# 30-60 % of onset..offset. Flow sees about a ninth of its motion (real-casme2-stats.md).
SUBPIXEL = dict(
    frame_size=128,
    frame_size_jitter=0.0,
    aspect=1.0,
    image_format="png",
    frames_min=40,
    frames_max=100,
    apex_min=0.3,
    apex_max=0.6,
    apex_beta=0.0,
    amplitude_px=0.3,
    amplitude_jitter=0.3,
    amplitude_spread=0.0,
    drift_px=0.2,
    noise_sigma=2.0,
    drift_spread=0.0,
    expression_extent=1.0,
)


@dataclass(frozen=True)
class ClipPlan:
    subject: str
    video: str
    label: str
    action_units: tuple[str, ...]
    n_frames: int
    first_frame: int  # number in the first file name, as in real datasets (not 0)
    onset: int  # absolute frame numbers
    apex: int
    offset: int
    subject_index: int
    clip_index: int
    height: int = 128  # frame size (px)
    width: int = 128


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


def plan_dataset(params: SynthParams) -> list[ClipPlan]:
    """Labels, lengths and annotations of every clip, without rendering a pixel."""
    classes = list(params.class_priors)
    priors = np.array([params.class_priors[c] for c in classes], dtype=float)
    priors /= priors.sum()
    plans = []
    for s in range(params.subjects):
        rng = _rng(params.seed, 0, s)
        # Each subject has its own class mix around the priors, as real subjects do.
        subject_mix = rng.dirichlet(priors * 8.0)
        low = max(1, round(0.5 * params.clips_per_subject))
        high = max(low, round(1.5 * params.clips_per_subject))
        n_clips = int(rng.integers(low, high + 1))
        labels = rng.choice(len(classes), size=n_clips, p=subject_mix)
        subject = f"sub{s + 1:02d}"
        for c, label_index in enumerate(labels):
            label = classes[label_index]
            n_frames = int(rng.integers(params.frames_min, params.frames_max + 1))
            first = int(rng.integers(1, 400))
            onset = int(rng.integers(2, max(3, round(0.2 * n_frames))))
            offset = n_frames - 1 - int(rng.integers(2, max(3, round(0.2 * n_frames))))
            apex = onset + int(round(_apex_position(rng, params) * (offset - onset)))
            variants = CLASS_ACTION_UNITS.get(label, [["?"]])
            action_units = tuple(variants[int(rng.integers(len(variants)))])
            plans.append(
                ClipPlan(
                    subject=subject,
                    video=f"clip{c + 1:02d}",
                    label=label,
                    action_units=action_units,
                    n_frames=n_frames,
                    first_frame=first,
                    onset=first + onset,
                    apex=first + apex,
                    offset=first + offset,
                    subject_index=s,
                    clip_index=c,
                    **_frame_shape(params, s, c),
                )
            )
    return plans


def _apex_position(rng: np.random.Generator, params: SynthParams) -> float:
    """Apex position in onset..offset (0..1). Real CASME II: 10-90 % 0.31-0.69, 0 to 1."""
    if params.apex_beta > 0:
        shape = params.apex_beta
        return params.apex_min + (params.apex_max - params.apex_min) * rng.beta(shape, shape)
    return rng.uniform(params.apex_min, params.apex_max)


def _frame_shape(params: SynthParams, subject_index: int, clip_index: int) -> dict:
    """(height, width) of one clip: real face crops differ in size per clip (own stream, so
    that the labels and timings of a seed do not depend on the size knobs)."""
    height = params.frame_size
    if params.frame_size_jitter > 0:
        rng = _rng(params.seed, 4, subject_index, clip_index)
        height = round(height * (1 + params.frame_size_jitter * rng.uniform(-1, 1)))
    return {"height": int(height), "width": int(round(height * params.aspect))}


# ---------------------------------------------------------------------------------------------
# Clips


def render_clip(plan: ClipPlan, params: SynthParams) -> dict:
    """Frames (T, H, W) uint8 and the clip's ground truth."""
    from scipy import ndimage  # ~0.7 s to load: only where frames are rendered

    # The face is rendered square at the clip's height; the frame keeps its central columns.
    size, width = plan.height, plan.width
    columns = slice((size - width) // 2, (size - width) // 2 + width)
    # Separate random streams: the face depends on the subject only, never on the clip plan.
    geometry = _face_geometry(_rng(params.seed, 2, plan.subject_index))
    texture_seed = int(_rng(params.seed, 3, plan.subject_index).integers(2**31))
    face = render_face(geometry, size, np.random.default_rng(texture_seed))

    rng = _rng(params.seed, 1, plan.subject_index, plan.clip_index)
    field_uv = expression_field(
        geometry, plan.action_units, size, rng, params.one_sided_prob, params.expression_extent
    )
    field_uv = np.ascontiguousarray(field_uv[:, columns])
    motion = _clip_motion(plan, params, rng)
    profile, drift, flicker, eyelid = (
        motion[k] for k in ("profile_px", "drift_px", "flicker_gain", "eyelid_closure")
    )

    noise_rng = np.random.default_rng(rng.integers(2**31))
    yy, xx = _grid(size)
    yy, xx = yy[:, columns], xx[:, columns]
    coefficients = ndimage.spline_filter(face, order=3)
    frames = np.empty((plan.n_frames, size, width), dtype=np.uint8)
    for i in range(plan.n_frames):
        source = coefficients
        if eyelid[i] > 0.02:
            source = ndimage.spline_filter(
                render_face(geometry, size, np.random.default_rng(texture_seed), eyelid[i]), order=3
            )
        qy = yy - profile[i] * field_uv[..., 1] - drift[i, 1]
        qx = xx - profile[i] * field_uv[..., 0] - drift[i, 0]
        image = ndimage.map_coordinates(source, [qy, qx], order=3, mode="nearest", prefilter=False)
        image = image * flicker[i] + noise_rng.normal(0, params.noise_sigma, image.shape)
        frames[i] = np.clip(np.rint(image), 0, 255).astype(np.uint8)

    onset, apex = plan.onset - plan.first_frame, plan.apex - plan.first_frame
    flow_uv = true_flow(field_uv, profile[onset], profile[apex], drift[onset], drift[apex])
    return {
        "frames": frames,
        "flow_uv": flow_uv,
        "expression_field": field_uv.astype(np.float32),
        **{k: v.astype(np.float32) for k, v in motion.items()},
    }


def _clip_motion(plan: ClipPlan, params: SynthParams, rng: np.random.Generator) -> dict:
    """Amplitude, temporal profile, head drift, flicker and eyelid of one clip, in px at the
    clip's own height (the knobs are in px at params.frame_size)."""
    scale = plan.height / params.frame_size
    # Draws beyond the sub-pixel world's come from their own stream, so that SUBPIXEL renders
    # exactly the clips it always did.
    spread_rng = _rng(params.seed, 5, plan.subject_index, plan.clip_index)
    amplitude = params.amplitude_px * (1 + params.amplitude_jitter * rng.uniform(-1, 1))
    amplitude *= scale * np.exp(params.amplitude_spread * spread_rng.standard_normal())
    onset, apex, offset = (x - plan.first_frame for x in (plan.onset, plan.apex, plan.offset))
    profile = amplitude * temporal_profile(plan.n_frames, onset, apex, offset)

    t = np.arange(plan.n_frames) / params.fps
    direction = rng.normal(size=2)
    direction /= np.linalg.norm(direction)
    # Slow drift: a steady glide plus a gentle sway, drift_px in total over the clip.
    ramp = t / max(t[-1], 1e-9) + 0.3 * np.sin(
        2 * np.pi * rng.uniform(0.3, 1.0) * t + rng.uniform(0, 6.3)
    )
    drift_px = params.drift_px * scale * np.exp(params.drift_spread * spread_rng.standard_normal())
    drift = drift_px * ramp[:, None] * direction[None, :]
    flicker = 1 + params.flicker * np.cumsum(rng.normal(0, 1, plan.n_frames)) / np.sqrt(
        plan.n_frames
    )

    eyelid = np.zeros(plan.n_frames)
    if rng.random() < params.blink_prob:
        start = int(rng.integers(0, plan.n_frames))
        length = int(rng.integers(16, 30))  # 80-150 ms at 200 fps
        k = np.arange(plan.n_frames) - start
        inside = (k >= 0) & (k < length)
        eyelid[inside] = np.sin(np.pi * k[inside] / length)
    return {
        "amplitude_px": np.float64(amplitude),
        "profile_px": profile,
        "drift_px": drift,
        "flicker_gain": flicker,
        "eyelid_closure": eyelid,
    }


def _write_clip(args: tuple[ClipPlan, SynthParams, str]) -> None:
    plan, params, out_dir = args
    clip = render_clip(plan, params)
    clip_dir = Path(out_dir, "frames", plan.subject, plan.video)
    clip_dir.mkdir(parents=True, exist_ok=True)
    suffix, options = ".png", []
    if params.image_format == "jpg":  # real datasets ship JPEG: 8x8 blocks, quantised noise
        suffix, options = ".jpg", [cv2.IMWRITE_JPEG_QUALITY, params.jpeg_quality]
    for i, frame in enumerate(clip.pop("frames")):
        cv2.imwrite(str(clip_dir / f"img{plan.first_frame + i}{suffix}"), frame, options)
    gt_dir = Path(out_dir, "ground_truth", plan.subject)
    gt_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        gt_dir / f"{plan.video}.npz",
        onset=plan.onset,
        apex=plan.apex,
        offset=plan.offset,
        first_frame=plan.first_frame,
        **clip,
    )


def write_dataset(params: SynthParams, out_dir: str | Path, workers: int = 1) -> pd.DataFrame:
    """Render the whole dataset into out_dir (built under a temporary name, then renamed)."""
    out_dir = Path(out_dir)
    tmp_dir = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    plans = plan_dataset(params)
    jobs = [(plan, params, str(tmp_dir)) for plan in plans]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_write_clip, jobs, chunksize=4))
    else:
        for job in jobs:
            _write_clip(job)
    annotations = pd.DataFrame(
        [
            {
                "subject": p.subject,
                "video": p.video,
                "onset": p.onset,
                "apex": p.apex,
                "offset": p.offset,
                "label": p.label,
                "fps": params.fps,
                "action_units": "+".join(p.action_units),
            }
            for p in plans
        ],
        columns=ANNOTATION_COLUMNS,
    )
    annotations.to_csv(tmp_dir / "annotations.csv", index=False)
    (tmp_dir / "generator.json").write_text(
        json.dumps({"mer_version": __version__, "params": asdict(params)}, indent=2)
    )
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp_dir, out_dir)
    return annotations


def preview(dataset_dir: str | Path, out_png: str | Path, n_clips: int = 4) -> None:
    """Onset, apex, |apex - onset| x10 and the true flow magnitude for the first clip of
    each of a few classes: shows that the motion is there and that it is subtle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dataset_dir = Path(dataset_dir)
    annotations = pd.read_csv(dataset_dir / "annotations.csv", dtype={"subject": str})
    chosen = annotations.drop_duplicates("label").head(n_clips)
    fig, axes = plt.subplots(len(chosen), 4, figsize=(10, 2.6 * len(chosen)), squeeze=False)
    for row_axes, (_, row) in zip(axes, chosen.iterrows(), strict=True):
        frames = list_frames(dataset_dir / "frames" / row["subject"] / row["video"])
        onset = cv2.imread(str(frames[row["onset"]]), cv2.IMREAD_GRAYSCALE).astype(float)
        apex = cv2.imread(str(frames[row["apex"]]), cv2.IMREAD_GRAYSCALE).astype(float)
        truth = np.load(dataset_dir / "ground_truth" / row["subject"] / f"{row['video']}.npz")
        magnitude = np.sqrt((truth["flow_uv"] ** 2).sum(-1))
        panels = [
            (onset, "onset", "gray", (0, 255)),
            (apex, "apex", "gray", (0, 255)),
            (np.abs(apex - onset) * 10, "|apex - onset| x10", "gray", (0, 255)),
            (magnitude, f"true flow |uv| (max {magnitude.max():.2f} px)", "magma", None),
        ]
        for ax, (image, title, cmap, limits) in zip(row_axes, panels, strict=True):
            shown = ax.imshow(
                image, cmap=cmap, vmin=limits and limits[0], vmax=limits and limits[1]
            )
            ax.set_title(
                f"{row['subject']}/{row['video']} {row['label']}\n{title}"
                if title == "onset"
                else title,
                fontsize=8,
            )
            ax.axis("off")
        fig.colorbar(shown, ax=row_axes[-1], fraction=0.046)
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_png.with_name(f".{out_png.stem}.tmp{out_png.suffix}")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, out_png)
