from __future__ import annotations

import cv2
import numpy as np
import pytest

from mer.methods.fdm import (
    cuboid_directions,
    fdm_cuboids,
    fdm_features,
    fdm_length,
    principal_direction,
)


def texture(seed: int, height: int, width: int) -> np.ndarray:
    """Smooth random texture on 20..220: enough gradient everywhere for the flow."""
    noise = np.random.default_rng(seed).random((height, width)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 1.5)
    return (smooth - smooth.min()) / (smooth.max() - smooth.min()) * 200 + 20


def translating_clip(n_frames=14, size=32, speed_px=1, seed=0) -> np.ndarray:
    """Content moving right by speed_px per frame: frame t shows the texture shifted by t."""
    wide = texture(seed, size, size + n_frames * speed_px + 8)
    frames = [
        wide[:, 4 + (n_frames - t) * speed_px : 4 + (n_frames - t) * speed_px + size]
        for t in range(n_frames)
    ]
    return np.rint(np.stack(frames)).astype(np.uint8)


@pytest.mark.parametrize(
    ("blocks", "segments", "expected"), [((5, 5), 3, 150), ((2, 2), 2, 16), ((1, 3), 4, 24)]
)
def test_feature_length_is_segments_times_blocks_times_two(blocks, segments, expected):
    features = fdm_features(translating_clip(), blocks=blocks, segments=segments, size=None)
    assert features.shape == (expected,) == (fdm_length(blocks, segments),)
    assert features.dtype == np.float32


def test_content_moving_right_gives_directions_pointing_right():
    directions, strengths = fdm_cuboids(
        translating_clip(), blocks=(2, 2), segments=2, size=None, remove_head_motion=False
    )
    np.testing.assert_allclose(directions[..., 0], 1.0, atol=0.02)  # +x: right
    np.testing.assert_allclose(directions[..., 1], 0.0, atol=0.1)
    np.testing.assert_allclose(strengths, 1.0, atol=0.1)  # 1 px per frame
    features = fdm_features(
        translating_clip(), blocks=(2, 2), segments=2, size=None, remove_head_motion=False
    ).reshape(-1, 2)
    assert (features[:, 0] > 0.9).all()


def test_only_the_moving_cuboids_point_right_when_the_rest_stands_still():
    clip = np.repeat(np.rint(texture(5, 32, 32)).astype(np.uint8)[None], 14, axis=0)
    clip[:, 16:, 16:] = translating_clip(size=16)  # bottom-right block moves right
    directions, strengths = fdm_cuboids(clip, blocks=(2, 2), segments=1, size=None)
    assert directions[0, 1, 1, 0] > 0.95 and strengths[0, 1, 1] > 0.7
    still_blocks = [strengths[0, 0, 0], strengths[0, 0, 1], strengths[0, 1, 0]]
    assert max(still_blocks) < 0.2 * strengths[0, 1, 1]


def test_a_static_clip_has_near_zero_strengths():
    clip = np.repeat(np.rint(texture(1, 32, 32)).astype(np.uint8)[None], 12, axis=0)
    features = fdm_features(clip, blocks=(2, 2), segments=2, size=None)
    assert np.abs(features).max() < 1e-3


def test_head_motion_removal_cancels_a_uniform_drift():
    features = fdm_features(translating_clip(), blocks=(2, 2), segments=2, size=None)
    assert np.abs(features).max() < 0.1


def test_features_are_deterministic_and_take_float_clips():
    clip = translating_clip(seed=3)
    first = fdm_features(clip, blocks=(2, 2), segments=3, size=24)
    np.testing.assert_array_equal(first, fdm_features(clip, blocks=(2, 2), segments=3, size=24))
    as_float = fdm_features(clip.astype(np.float64), blocks=(2, 2), segments=3, size=24)
    np.testing.assert_allclose(as_float, first, atol=1e-5)


def test_principal_direction_follows_the_majority_not_the_mean():
    # 60 % of the vectors point right, 40 % up-left: the mean leans up, the principal direction
    # is the right-pointing majority (the minority has a negative projection on it).
    vectors = np.array([[1.0, 0.0]] * 6 + [[-0.6, -0.8]] * 4)
    direction, strength = principal_direction(vectors)
    np.testing.assert_allclose(direction, [1.0, 0.0], atol=1e-9)
    assert strength == pytest.approx(0.6)
    direction, strength = principal_direction(np.zeros((5, 2)))
    assert strength == 0 and not direction.any()


def test_too_few_frames_or_pixels_are_refused():
    flows = np.zeros((3, 8, 8, 2), np.float32)
    with pytest.raises(ValueError, match="segments"):
        cuboid_directions(flows, (2, 2), 4)
    with pytest.raises(ValueError, match="blocks"):
        cuboid_directions(flows, (9, 2), 1)
