"""A dataset's motion card: what its clips look like to the method, measured per clip and
summarised (10 %, median, 90 %), the same way for the synthetic world and for real datasets.

Measured on the raw frames (before magnification): clip length and timing, frame size, the
onset->apex motion seen by DeepFlow (mer.preprocess.flow's defaults), split into the clip's
global (head) motion, its median flow, and the residual around it; the sensor noise at the
onset; and the coverage of the masks stage's masks. Motion is also given in px at a 300-px
face height (px * 300 / frame height), so that frames of any size compare.
README's motion card holds the same table for 218 real CASME II clips
(REAL_CASME2 below), the target of the synthetic defaults.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mer.data.frames import list_frames, read_gray
from mer.preprocess.flow import onset_apex_flow

REFERENCE_HEIGHT_PX = 300
# Columns of clips.tsv, in order, with what each holds (summary.tsv has one row per measure).
MEASURES = {
    "frames": "frames onset..offset",
    "onset_to_apex": "frames onset->apex",
    "apex_position": "apex position in onset..offset (0..1)",
    "height": "frame height (px)",
    "width": "frame width (px)",
    "residual_p50_px": "residual flow, median over the frame (px)",
    "residual_p95_px": "residual flow, 95th percentile (px)",
    "residual_max_px": "residual flow, maximum (px)",
    "residual_p50_300": "residual flow, median (px at 300-px height)",
    "residual_p95_300": "residual flow, 95th percentile (px at 300-px height)",
    "residual_max_300": "residual flow, maximum (px at 300-px height)",
    "global_300": "global (head) motion onset->apex, |median flow| (px at 300-px height)",
    "noise_sigma": "noise at the onset, robust sigma (gray levels)",
    "mask_coverage": "mask coverage of the frame (0..1)",
}
# Measured by `mer motion-card` on real CASME II: (10 %, median, 90 %) of real CASME II clips.
REAL_CASME2 = {
    "frames": (41, 65, 96),
    "onset_to_apex": (18, 30, 53),
    "apex_position": (0.31, 0.51, 0.69),
    "height": (292, 312, 320),
    "width": (239, 259, 275),
    "residual_p95_300": (0.44, 1.50, 3.74),
    "residual_max_300": (0.78, 2.0, 4.96),
    "global_300": (0.19, 0.40, 1.19),
    "mask_coverage": (0.06, 0.25, 0.79),
}
FIGURE_MEASURES = (
    "frames",
    "apex_position",
    "height",
    "residual_p95_300",
    "residual_max_300",
    "global_300",
    "noise_sigma",
    "mask_coverage",
)


def noise_sigma(frame: np.ndarray, next_frame: np.ndarray) -> float:
    """Robust sigma of one frame's noise from two consecutive frames: 1.4826 MAD of their
    difference, over sqrt(2) (the difference holds two frames' noise).

    Differences of uint8 frames are integers, whose plain median jumps by whole gray levels
    (sigma 1.05 or 2.10, nothing between); the MAD is the grouped-data median instead, each
    integer standing for the interval +-0.5 around it."""
    difference = next_frame.astype(np.int32) - frame.astype(np.int32)
    deviation = np.abs(difference - int(np.rint(np.median(difference)))).ravel()
    counts = np.bincount(deviation)
    below = np.concatenate([[0], np.cumsum(counts)[:-1]])
    middle = int(np.searchsorted(np.cumsum(counts), deviation.size / 2))
    # Deviation 0 stands for [0, 0.5) (folded), deviation k > 0 for [k - 0.5, k + 0.5).
    lower, width = (0.0, 0.5) if middle == 0 else (middle - 0.5, 1.0)
    mad = lower + width * (deviation.size / 2 - below[middle]) / counts[middle]
    return float(1.4826 * mad / np.sqrt(2))


def motion_measures(onset: np.ndarray, apex: np.ndarray) -> dict:
    """Onset->apex DeepFlow split into global motion (the median flow) and the residual."""
    flow_uv = onset_apex_flow(onset, apex, method="deepflow")
    median_uv = np.median(flow_uv.reshape(-1, 2), axis=0)
    residual = np.sqrt(((flow_uv - median_uv) ** 2).sum(-1))
    to_300 = REFERENCE_HEIGHT_PX / onset.shape[0]
    p50, p95, peak = np.percentile(residual, [50, 95, 100])
    return {
        "residual_p50_px": p50,
        "residual_p95_px": p95,
        "residual_max_px": peak,
        "residual_p50_300": p50 * to_300,
        "residual_p95_300": p95 * to_300,
        "residual_max_300": peak * to_300,
        "global_300": float(np.hypot(*median_uv)) * to_300,
    }


def clip_card(
    frames_dir: str | Path, onset: int, apex: int, offset: int, mask: np.ndarray | None = None
) -> dict:
    """Every measure of MEASURES for one clip (frame numbers as in the file names)."""
    frames = list_frames(frames_dir)
    onset_gray, apex_gray = read_gray(frames[onset]), read_gray(frames[apex])
    after_onset = frames.get(onset + 1, frames[min(n for n in frames if n > onset)])
    return {
        "frames": offset - onset + 1,
        "onset_to_apex": apex - onset,
        "apex_position": (apex - onset) / max(offset - onset, 1),
        "height": onset_gray.shape[0],
        "width": onset_gray.shape[1],
        **motion_measures(onset_gray, apex_gray),
        "noise_sigma": noise_sigma(onset_gray, read_gray(after_onset)),
        "mask_coverage": float(np.mean(mask)) if mask is not None else np.nan,
    }


def _sample_card(job: tuple[dict, str | None]) -> dict:
    import cv2

    cv2.setNumThreads(1)  # one clip per worker process
    row, mask_path = job
    mask = np.load(mask_path)["mask"] if mask_path else None
    measures = clip_card(row["frames_dir"], row["onset"], row["apex"], row["offset"], mask)
    return {"sample": row["sample"], "subject": row["subject"], "label": row["label"], **measures}


def card_table(
    samples: pd.DataFrame, masks_dir: str | Path | None = None, workers: int = 1
) -> pd.DataFrame:
    """clips.tsv: one row per sample of a samples table, its masks read from masks_dir
    (<sample>.npz, the masks stage's output) when given."""
    from concurrent.futures import ProcessPoolExecutor

    jobs = [
        (row, str(Path(masks_dir, f"{row['sample']}.npz")) if masks_dir else None)
        for row in samples.to_dict("records")
    ]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            rows = list(pool.map(_sample_card, jobs))
    else:
        rows = [_sample_card(job) for job in jobs]
    return pd.DataFrame(rows, columns=["sample", "subject", "label", *MEASURES])


def summarise(clips: pd.DataFrame) -> pd.DataFrame:
    """One row per measure: clips measured, 10 %, median, 90 %, and real CASME II's."""
    rows = []
    for measure, meaning in MEASURES.items():
        values = clips[measure].dropna()
        p10, p50, p90 = np.percentile(values, [10, 50, 90]) if len(values) else (np.nan,) * 3
        real = REAL_CASME2.get(measure, (np.nan,) * 3)
        rows.append(
            {
                "measure": measure,
                "clips": len(values),
                "p10": p10,
                "median": p50,
                "p90": p90,
                "real_casme2_p10": real[0],
                "real_casme2_median": real[1],
                "real_casme2_p90": real[2],
                "meaning": meaning,
            }
        )
    return pd.DataFrame(rows)


def card_figure(clips: pd.DataFrame, title: str):
    """Histograms of the card's main measures, real CASME II's 10-90 % band and median shaded
    (a matplotlib Figure, no pyplot state)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 5.6))
    axes = fig.subplots(2, 4).ravel()
    for ax, measure in zip(axes, FIGURE_MEASURES, strict=True):
        values = clips[measure].dropna()
        if measure in REAL_CASME2:
            low, median, high = REAL_CASME2[measure]
            ax.axvspan(low, high, color="tab:orange", alpha=0.2, label="real CASME II 10-90 %")
            ax.axvline(median, color="tab:orange", label="real median")
        if len(values):
            ax.hist(values, bins=min(20, max(5, len(values) // 3)), color="tab:blue")
            ax.axvline(values.median(), color="tab:blue", linestyle="--", label="median here")
        ax.set_title(MEASURES[measure], fontsize=8, wrap=True)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{title}: motion card, {len(clips)} clips", fontsize=10)
    fig.tight_layout()
    return fig
