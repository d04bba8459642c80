"""ELRCN's per-sample sequence inputs: per time step optical flow (u, v) from the onset frame,
its optical strain magnitude and the gray frame, stacked as channels.

ELRCN (Khor, See, Phan & Lin, "Enriched long-term recurrent convolutional network for facial
micro-expression recognition", FG 2018) encodes every frame of a clip with a CNN and classifies
the sequence of frame features with an LSTM; its inputs per frame are optical flow, optical
strain and the gray image. This module makes those inputs for one clip; mer.methods.elrcn
trains the network. Kept apart from it so that the per-sample workflow job never imports torch.

Layout of `sequence_inputs(...)["inputs"]`: (steps, 4, size, size) float32, channels CHANNELS:
    u, v     flow from the onset frame to the step's frame, pixels at the working size
             (mer.preprocess.flow's convention: onset(y, x) ~ frame(y + v, x + u));
    strain   optical strain magnitude of that flow (dimensionless);
    gray     the step's frame, 0..255.
Steps are ordered by frame number; step 0 is the onset itself (zero flow and strain).
"""

from __future__ import annotations

import cv2
import numpy as np

from mer.preprocess import flow

CHANNELS = ("u", "v", "strain", "gray")
DEFAULT_STEPS = 10
DEFAULT_SIZE = 64
# MSCNN's flow method (most accurate on synthetic micro-motion, mer.preprocess.flow): 0.25 s
# for the 9 flows of a 10-step clip at 64x64 (Farneback and DIS: 0.02 s), measured on one core.
DEFAULT_FLOW_METHOD = flow.DEFAULT_METHOD


def step_frames(frame_numbers, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(positions into frame_numbers, chosen frame numbers) of `steps` time steps.

    The steps are spaced evenly in frame number from the first (onset) to the last (offset)
    frame, each taking the clip's frame nearest in number, so that a gap in the numbering
    does not shift the timing; clips shorter than `steps` repeat frames. The order is by
    frame number whatever the order of `frame_numbers`.
    """
    frame_numbers = np.asarray(frame_numbers)
    if frame_numbers.ndim != 1 or len(frame_numbers) == 0:
        raise ValueError(f"frame_numbers must be a non-empty 1-D list; got {frame_numbers!r}")
    if len(np.unique(frame_numbers)) != len(frame_numbers):
        raise ValueError("frame_numbers repeat a frame: each frame must be numbered once")
    if steps < 1:
        raise ValueError(f"steps must be at least 1; got {steps}")
    order = np.argsort(frame_numbers, kind="stable")
    numbers = frame_numbers[order].astype(np.float64)
    targets = np.linspace(numbers[0], numbers[-1], steps)
    nearest = np.abs(numbers[None, :] - targets[:, None]).argmin(axis=1)
    positions = order[nearest]
    return positions, frame_numbers[positions]


def optical_strain(flow_uv: np.ndarray) -> np.ndarray:
    """Optical strain magnitude (H, W) float32 of a flow field (H, W, 2).

    The strain tensor of the displacement (u, v): e_xx = du/dx, e_yy = dv/dy,
    e_xy = e_yx = (du/dy + dv/dx) / 2, and its magnitude sqrt(e_xx² + e_yy² + 2 e_xy²)
    (Shreve et al. 2011, used by ELRCN). Derivatives are central differences (one-sided at the
    border), in pixels per pixel. A uniform translation has zero strain; a horizontal mirror
    (u negated and flipped) leaves the magnitude mirrored.
    """
    flow_uv = np.asarray(flow_uv, dtype=np.float64)
    if flow_uv.ndim != 3 or flow_uv.shape[-1] != 2 or min(flow_uv.shape[:2]) < 2:
        raise ValueError(f"flow must be (H, W, 2) with H, W >= 2; got {flow_uv.shape}")
    du_dy, du_dx = np.gradient(flow_uv[..., 0])
    dv_dy, dv_dx = np.gradient(flow_uv[..., 1])
    shear = 0.5 * (du_dy + dv_dx)
    return np.sqrt(du_dx**2 + dv_dy**2 + 2 * shear**2).astype(np.float32)


def sequence_inputs(
    clip: np.ndarray,
    frame_numbers,
    steps: int = DEFAULT_STEPS,
    size: int = DEFAULT_SIZE,
    flow_method: str = DEFAULT_FLOW_METHOD,
    **flow_params,
) -> dict[str, np.ndarray]:
    """dict(inputs (steps, 4, size, size) float32, frame_numbers (steps,)) of a gray clip.

    `clip` (T, H, W) holds the frames whose numbers `frame_numbers` lists, in any order; the
    smallest number is the onset. Frames are resized to size x size (INTER_AREA) before the
    flow: ELRCN's CNN sees small frames, and flow at the working size costs milliseconds.

    Flow is measured from the onset to each step's frame, not frame to frame: at 200 fps a
    micro-expression moves far less than a pixel between neighbouring frames, below the flow
    noise, while the displacement from the onset grows to the apex and back, so each step
    says how far the expression has got (the original references the first frame likewise).
    """
    clip = np.asarray(clip)
    if clip.ndim != 3 or len(clip) != len(np.asarray(frame_numbers)):
        raise ValueError(
            f"clip must be (T, H, W) with one frame per frame number; got {clip.shape} and "
            f"{len(np.asarray(frame_numbers))} numbers"
        )
    flow.check_available(flow_method)
    positions, chosen_numbers = step_frames(frame_numbers, steps)
    onset_position = int(np.argmin(np.asarray(frame_numbers)))
    onset = _resized(clip[onset_position], size)
    inputs = np.zeros((steps, len(CHANNELS), size, size), np.float32)
    flows = {}  # a frame repeated by a short clip is measured once
    for step, position in enumerate(positions):
        frame = _resized(clip[position], size)
        if position == onset_position:
            flow_uv = np.zeros((size, size, 2), np.float32)
        elif position in flows:
            flow_uv = flows[position]
        else:
            flow_uv = flow.onset_apex_flow(onset, frame, flow_method, **flow_params)
            flows[position] = flow_uv
        inputs[step, 0:2] = flow_uv.transpose(2, 0, 1)
        inputs[step, 2] = optical_strain(flow_uv)
        inputs[step, 3] = frame
    return {"inputs": inputs, "frame_numbers": np.asarray(chosen_numbers, dtype=np.int64)}


def _resized(frame: np.ndarray, size: int) -> np.ndarray:
    """A gray frame at size x size, float32 on the 0..255 scale."""
    frame = np.asarray(frame, dtype=np.float32)
    if frame.shape != (size, size):
        frame = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
    return frame
