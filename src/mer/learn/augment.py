"""10x augmentation: {identity, horizontal flip} x rotations {0, +5, -5, +10, -10} degrees.

Applied to the flow *field* and the apex gray image together; the flow image and mask of a
variant are then derived from its transformed field (as the masks stage does), never by
rotating the hue image, whose colours encode directions that a rotation must change.

Conventions (image coordinates, x right, y down; flow onset(y, x) ~ apex(y + v, x + u)):
- flip: position x -> W - 1 - x and u -> -u;
- rotation by +angle: counter-clockwise on screen about the image centre (as
  cv2.getRotationMatrix2D); positions and vectors go through the same linear map
  (u, v) -> (u cos a + v sin a, -u sin a + v cos a).
Borders: the field is 0 where the rotation brings in pixels from outside (no motion is known
there, so those corners are background in the mask); the gray image replicates its edge, so
that no black corners appear that a network could learn as a cue of the rotation.
"""

from __future__ import annotations

import cv2
import numpy as np

from mer.preprocess import masks

ROTATIONS_DEG = (0.0, 5.0, -5.0, 10.0, -10.0)
# Augmentation id -> (flip, angle); id 0 is the un-augmented original.
AUGMENTATIONS = tuple((flip, angle) for flip in (False, True) for angle in ROTATIONS_DEG)


def flip_field(flow_uv: np.ndarray) -> np.ndarray:
    mirrored = flow_uv[:, ::-1].copy()
    mirrored[..., 0] *= -1
    return mirrored


def _rotation(shape: tuple[int, ...], angle_deg: float) -> np.ndarray:
    height, width = shape[:2]
    return cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), angle_deg, 1.0)


def rotate_field(flow_uv: np.ndarray, angle_deg: float) -> np.ndarray:
    """Rotate positions and vectors of a (H, W, 2) field by angle_deg (counter-clockwise)."""
    if angle_deg == 0:
        return flow_uv.copy()
    matrix = _rotation(flow_uv.shape, angle_deg)
    height, width = flow_uv.shape[:2]
    moved = cv2.warpAffine(
        flow_uv.astype(np.float32),
        matrix,
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return moved @ matrix[:, :2].T.astype(np.float32)


def rotate_image(image: np.ndarray, angle_deg: float) -> np.ndarray:
    if angle_deg == 0:
        return image.copy()
    height, width = image.shape[:2]
    return cv2.warpAffine(
        image,
        _rotation(image.shape, angle_deg),
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def resize_field(flow_uv: np.ndarray, size: int) -> np.ndarray:
    """Resample a field to size x size; vectors scale with the image (pixels change size)."""
    height, width = flow_uv.shape[:2]
    if (height, width) == (size, size):
        return flow_uv.astype(np.float32)
    resized = cv2.resize(flow_uv.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    return resized * np.float32([size / width, size / height])


def variant(
    flow_uv: np.ndarray,
    apex_gray: np.ndarray,
    size: int,
    flip: bool = False,
    angle_deg: float = 0.0,
    threshold: int = 50,
    normalise: str = "per_sample",
    scale_px: float = 1.0,
) -> dict:
    """One variant at the network input size: flow_uv (size, size, 2), flow_image (BGR),
    mask, apex_gray, masked_apex. The flow image and mask come from the transformed field at
    the working resolution (as in the masks stage) and are then resized. flip=False,
    angle_deg=0 is the un-augmented original that testing and `mer predict` use."""
    field = flip_field(flow_uv) if flip else flow_uv
    apex = apex_gray[:, ::-1] if flip else apex_gray
    field, apex = (
        rotate_field(field, angle_deg),
        rotate_image(np.ascontiguousarray(apex), angle_deg),
    )
    flow_bgr = masks.flow_image(field, normalise=normalise, scale_px=scale_px)
    mask = masks.motion_mask(flow_bgr, threshold)
    small_apex = cv2.resize(apex, (size, size), interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(
        mask.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST
    ).astype(bool)
    return {
        "flow_uv": resize_field(field, size),
        "flow_image": cv2.resize(flow_bgr, (size, size), interpolation=cv2.INTER_AREA),
        "mask": small_mask,
        "apex_gray": small_apex,
        "masked_apex": masks.masked_apex(small_apex, small_mask),
    }


def variants(
    flow_uv: np.ndarray,
    apex_gray: np.ndarray,
    size: int,
    threshold: int = 50,
    normalise: str = "per_sample",
    scale_px: float = 1.0,
) -> list[dict]:
    """The 10 variants of one sample (see `variant`), in AUGMENTATIONS order; variant 0 equals
    the masks stage's output resized."""
    return [
        variant(flow_uv, apex_gray, size, flip, angle, threshold, normalise, scale_px)
        for flip, angle in AUGMENTATIONS
    ]
