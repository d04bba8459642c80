"""Stage 5: flow field -> HSV flow image -> gray -> binary motion mask -> masked apex gray.

The method binarises the gray flow image at 50 and multiplies the apex gray image by the mask
(MSCNN, section II). Our conventions, decided here and tested:
- flow image: hue = direction (OpenCV hue 0..179 = 0..358 degrees, measured from +x towards +y,
  image coordinates), saturation 255, value = magnitude;
- value scale: `per_sample` (the method's: the largest magnitude of the sample maps to 255) or
  `fixed` (`scale_px` maps to 255, saturating), which does not let estimator noise on a still
  face become a full-brightness mask;
- gray = OpenCV's BGR->gray luma of the flow image, as the method's "binarise the flow image"
  implies. Luma weights colours differently, so the gray level of a given magnitude depends on
  its direction (blue-ish directions are darker): a property of the method we keep;
- foreground is gray > threshold, strictly (cv2.threshold's THRESH_BINARY): a gray value of
  exactly 50 is background.
"""

from __future__ import annotations

import cv2
import numpy as np

NORMALISATIONS = ("per_sample", "fixed")


def flow_image(
    flow_uv: np.ndarray, normalise: str = "per_sample", scale_px: float = 1.0
) -> np.ndarray:
    """(H, W, 2) flow -> (H, W, 3) uint8 BGR image, hue = direction, value = magnitude."""
    if normalise not in NORMALISATIONS:
        raise ValueError(f"normalise must be one of {NORMALISATIONS}, not {normalise!r}")
    if not np.isfinite(flow_uv).all():
        raise ValueError("flow field holds NaN or inf; recompute the flow of this sample")
    magnitude, angle_deg = cv2.cartToPolar(
        np.ascontiguousarray(flow_uv[..., 0], dtype=np.float32),
        np.ascontiguousarray(flow_uv[..., 1], dtype=np.float32),
        angleInDegrees=True,
    )
    if normalise == "per_sample":
        peak = float(magnitude.max())
        value = magnitude / peak * 255.0 if peak > 0 else np.zeros_like(magnitude)
    else:
        if scale_px <= 0:
            raise ValueError(f"scale_px must be positive, not {scale_px}")
        value = magnitude / scale_px * 255.0
    hsv = np.empty(flow_uv.shape[:2] + (3,), np.uint8)
    hsv[..., 0] = np.rint(angle_deg / 2.0).astype(np.uint16) % 180
    hsv[..., 1] = 255
    hsv[..., 2] = np.clip(np.rint(value), 0, 255).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def motion_mask(flow_bgr: np.ndarray, threshold: int = 50) -> np.ndarray:
    """Binary mask (bool) where the gray flow image is strictly above the threshold."""
    if not 0 <= threshold <= 255:
        raise ValueError(f"threshold must be within 0..255, not {threshold}")
    return cv2.cvtColor(flow_bgr, cv2.COLOR_BGR2GRAY) > threshold


def masked_apex(apex_gray: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Apex gray image kept inside the mask, zero outside."""
    if apex_gray.shape != mask.shape:
        raise ValueError(f"apex {apex_gray.shape} and mask {mask.shape} differ in size")
    return np.where(mask, apex_gray, 0).astype(apex_gray.dtype)
