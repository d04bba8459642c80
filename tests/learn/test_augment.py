import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mer.learn import augment
from mer.preprocess import masks


def bump_field(size=33, centre=(20, 10), vector=(1.0, 0.0), radius=3.0):
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    weight = np.exp(-((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * radius**2))
    return (weight[..., None] * np.float32(vector)).astype(np.float32)


def peak_position(flow_uv):
    magnitude = np.sqrt((flow_uv**2).sum(-1))
    y, x = np.unravel_index(magnitude.argmax(), magnitude.shape)
    return x, y


def test_flip_negates_u_and_mirrors_positions():
    field = bump_field(centre=(20, 10), vector=(1.0, 0.5))
    flipped = augment.flip_field(field)
    assert peak_position(flipped) == (32 - 20, 10)
    assert np.allclose(flipped[10, 12], [-field[10, 20, 0], field[10, 20, 1]])


@pytest.mark.parametrize("angle", augment.ROTATIONS_DEG)
def test_rotating_a_uniform_field_rotates_its_vector_by_the_angle(angle):
    field = np.broadcast_to(np.float32([1.0, 0.0]), (41, 41, 2)).copy()
    rotated = augment.rotate_field(field, angle)
    u, v = rotated[20, 20]
    # Counter-clockwise on screen: a rightward vector turns upwards (v < 0 in image rows).
    assert np.isclose(np.degrees(np.arctan2(-v, u)), angle, atol=1e-3)
    assert np.isclose(np.hypot(u, v), 1.0, atol=1e-5)


def test_rotation_moves_positions_the_way_it_turns_vectors():
    # A vector pointing from the centre to the bump must still point at the bump after rotation.
    field = bump_field(size=41, centre=(30, 20), vector=(1.0, 0.0))
    rotated = augment.rotate_field(field, 10.0)
    x, y = peak_position(rotated)
    u, v = rotated[y, x]
    assert np.isclose(np.arctan2(y - 20, x - 20), np.arctan2(v, u), atol=0.08)


def test_field_outside_the_rotated_frame_is_zero_and_the_image_has_no_black_corners():
    field = np.ones((32, 32, 2), np.float32)
    image = np.full((32, 32), 200, np.uint8)
    assert np.allclose(augment.rotate_field(field, 10.0)[0, 0], 0)
    assert augment.rotate_image(image, 10.0).min() == 200


@settings(max_examples=25, deadline=None)
@given(u=st.floats(-2, 2), v=st.floats(-2, 2))
def test_flipping_twice_is_the_identity(u, v):
    field = bump_field(vector=(u, v))
    assert np.array_equal(augment.flip_field(augment.flip_field(field)), field)


def test_ten_variants_with_the_first_equal_to_the_original_resized():
    rng = np.random.default_rng(1)
    field = bump_field(size=48, centre=(30, 20), vector=(0.3, -0.2))
    apex = rng.integers(0, 256, (48, 48), dtype=np.uint8)
    variants = augment.variants(field, apex, size=32)
    assert len(variants) == 10 == len(augment.AUGMENTATIONS)
    original = masks.flow_image(field)
    import cv2

    assert np.array_equal(
        variants[0]["flow_image"], cv2.resize(original, (32, 32), interpolation=cv2.INTER_AREA)
    )
    assert np.array_equal(
        variants[0]["apex_gray"], cv2.resize(apex, (32, 32), interpolation=cv2.INTER_AREA)
    )
    for variant in variants:
        assert (variant["masked_apex"][~variant["mask"]] == 0).all()
    # Vectors shrink with the image: a 48 -> 32 resize scales them by 2/3.
    assert np.isclose(np.abs(variants[0]["flow_uv"]).max(), np.abs(field).max() * 2 / 3, rtol=0.15)
    assert not np.array_equal(variants[5]["apex_gray"], variants[0]["apex_gray"])  # flipped
