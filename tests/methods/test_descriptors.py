"""LBP-SIP, HOOF and HOG3D: lengths, the properties their definitions promise, and that each
tells easy synthetic classes apart through the LOSO linear SVM."""

from __future__ import annotations

import numpy as np
import pytest

from mer.methods.hog3d import hog3d_features, hog3d_length
from mer.methods.hoof import (
    hoof_features,
    hoof_length,
    hoof_sequence_features,
    hoof_sequence_histograms,
    hoof_sequence_length,
)
from mer.methods.lbpsip import lbpsip_features, lbpsip_length
from mer.methods.svm import loso_svm

CLASSES = ["right", "down", "static"]


def noise_clip(seed: int, shape=(9, 40, 44), low=0, high=200) -> np.ndarray:
    return np.random.default_rng(seed).integers(low, high, shape).astype(np.uint8)


def blob_clip(rng, label: int, frames: int = 8, size: int = 32) -> np.ndarray:
    """A bright Gaussian blob on a noisy background, moving right, down, or not at all."""
    step = rng.uniform(0.8, 1.5)
    start = rng.uniform(10, 14, 2)
    y, x = np.mgrid[:size, :size]
    clip = []
    for t in range(frames):
        cy = start[0] + (t * step if label == 1 else 0)
        cx = start[1] + (t * step if label == 0 else 0)
        frame = 60 + 120 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * 3.0**2))
        clip.append(frame + rng.normal(0, 3, frame.shape))
    return np.clip(np.stack(clip), 0, 255).astype(np.uint8)


def direction_flow(rng, label: int, size: int = 30) -> np.ndarray:
    """A noisy flow field moving up, down, or sideways (left or right at random)."""
    magnitude = rng.uniform(0.5, 2.0)
    direction = {0: (rng.choice([-1, 1]), 0), 1: (0, 1), 2: (0, -1)}[label]
    flow_uv = np.empty((size, size, 2), np.float32)
    flow_uv[..., 0], flow_uv[..., 1] = direction[0] * magnitude, direction[1] * magnitude
    return flow_uv + rng.normal(0, 0.3, flow_uv.shape).astype(np.float32)


def loso_accuracy(make_sample, describe, subjects: int = 4, per_class: int = 3) -> float:
    """Pooled LOSO accuracy of the linear SVM on describe(make_sample(rng, label))."""
    rng = np.random.default_rng(0)
    rows = [
        (f"s{s}", label, describe(make_sample(rng, label)))
        for s in range(subjects)
        for label in range(len(CLASSES))
        for _ in range(per_class)
    ]
    features = np.stack([r[2] for r in rows])
    labels = np.array([r[1] for r in rows])
    folds = loso_svm(features, labels, np.array([r[0] for r in rows]), CLASSES, seed=0)
    return float(
        np.mean(np.concatenate([f.true_label == f.predicted_label for f in folds.values()]))
    )


# --- lengths ---------------------------------------------------------------------------------


@pytest.mark.parametrize("blocks", [(5, 5), (1, 1), (2, 3)])
def test_lbpsip_has_twenty_bins_per_block(blocks):
    features = lbpsip_features(noise_clip(0), blocks)
    assert features.shape == (lbpsip_length(blocks),) == (blocks[0] * blocks[1] * 20,)
    # Each block's spatial (16) and temporal (4) histograms sum to 1.
    per_block = features.reshape(-1, 20)
    np.testing.assert_allclose(per_block[:, :16].sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(per_block[:, 16:].sum(1), 1, atol=1e-5)


@pytest.mark.parametrize(("blocks", "bins"), [((5, 5), 8), ((1, 1), 12), ((3, 2), 4)])
def test_hoof_has_bins_per_block(blocks, bins):
    flow_uv = np.random.default_rng(0).normal(size=(30, 36, 2)).astype(np.float32)
    features = hoof_features(flow_uv, blocks, bins)
    assert features.shape == (hoof_length(blocks, bins),) == (blocks[0] * blocks[1] * bins,)
    np.testing.assert_allclose(features.reshape(-1, bins).sum(1), 1, atol=1e-5)


@pytest.mark.parametrize(
    ("blocks", "segments", "bins_xy", "bins_t"), [((5, 5), 2, 8, 4), ((2, 2), 3, 6, 2)]
)
def test_hog3d_has_spatial_and_temporal_bins_per_cell(blocks, segments, bins_xy, bins_t):
    features = hog3d_features(noise_clip(1), blocks, segments, bins_xy, bins_t)
    expected = blocks[0] * blocks[1] * segments * (bins_xy + bins_xy * bins_t)
    assert features.shape == (hog3d_length(blocks, segments, bins_xy, bins_t),) == (expected,)
    np.testing.assert_allclose(features.reshape(-1, bins_xy * (1 + bins_t)).sum(1), 1, atol=1e-5)


# --- properties ------------------------------------------------------------------------------


@pytest.mark.parametrize(("u", "v"), [(1.0, 0.0), (-0.7, 0.7), (0.0, -2.0), (0.3, 1.1)])
def test_hoof_of_a_uniform_flow_puts_all_weight_in_one_bin_per_block(u, v):
    flow_uv = np.empty((20, 20, 2), np.float32)
    flow_uv[..., 0], flow_uv[..., 1] = u, v
    histograms = hoof_features(flow_uv, (2, 2), 8).reshape(4, 8)
    assert (histograms.max(axis=1) == 1).all()
    assert len(set(histograms.argmax(axis=1).tolist())) == 1


def test_hoof_does_not_tell_left_from_right_but_up_from_down():
    def uniform(u, v):
        flow_uv = np.empty((10, 10, 2), np.float32)
        flow_uv[..., 0], flow_uv[..., 1] = u, v
        return hoof_features(flow_uv, (1, 1), 8)

    np.testing.assert_array_equal(uniform(1, 0.2), uniform(-1, 0.2))
    assert uniform(0.2, 1).argmax() != uniform(0.2, -1).argmax()


def test_hoof_of_the_mirrored_flow_is_the_histogram_with_mirrored_blocks():
    """Mirroring left/right (x -> W-1-x, u -> -u) mirrors the block grid (column c ->
    columns-1-c); each block's bins stay as they are (HOOF's symmetric binning)."""
    flow_uv = np.random.default_rng(2).normal(size=(24, 30, 2)).astype(np.float32)
    mirrored = flow_uv[:, ::-1].copy()
    mirrored[..., 0] *= -1
    blocks, bins = (4, 3), 8  # 30 columns split evenly in 3: the grid mirrors onto itself
    original = hoof_features(flow_uv, blocks, bins).reshape(4, 3, bins)
    np.testing.assert_allclose(
        hoof_features(mirrored, blocks, bins).reshape(4, 3, bins), original[:, ::-1], atol=1e-6
    )


def test_hoof_of_a_still_block_is_zero():
    flow_uv = np.zeros((10, 20, 2), np.float32)
    flow_uv[:, 10:, 1] = 1.0
    histograms = hoof_features(flow_uv, (1, 2), 4).reshape(2, 4)
    assert histograms[0].sum() == 0 and histograms[1].sum() == pytest.approx(1)


@pytest.mark.parametrize("offset", [-30, 1, 30])
def test_lbpsip_is_invariant_to_a_brightness_offset(offset):
    clip = noise_clip(3, low=0, high=40).astype(np.int16) * 5 + 30  # ties, no saturation
    shifted = clip + offset
    np.testing.assert_array_equal(
        lbpsip_features(clip.astype(np.uint8)), lbpsip_features(shifted.astype(np.uint8))
    )


def test_lbpsip_of_a_static_clip_codes_every_temporal_neighbour_as_equal():
    clip = np.repeat(noise_clip(4, shape=(1, 20, 20)), 5, axis=0)
    temporal = lbpsip_features(clip, (1, 1))[16:]
    np.testing.assert_array_equal(temporal, [0, 0, 0, 1])  # both neighbours >= centre


def test_hog3d_of_a_static_clip_has_zero_temporal_bins():
    clip = np.repeat(noise_clip(5, shape=(1, 30, 30)), 6, axis=0)
    cells = hog3d_features(clip, (2, 2), 2, 8, 4).reshape(8, 8 * 5)
    assert np.abs(cells[:, 8:]).max() == 0
    np.testing.assert_allclose(cells[:, :8].sum(1), 1, atol=1e-5)


def test_hog3d_tells_a_motion_from_its_reverse():
    rng = np.random.default_rng(6)
    clip = blob_clip(rng, label=0)
    forward, backward = hog3d_features(clip, (1, 1), 1), hog3d_features(clip[::-1], (1, 1), 1)
    np.testing.assert_allclose(forward[:8], backward[:8], atol=1e-6)  # same edges
    assert np.abs(forward[8:] - backward[8:]).sum() > 0.2  # opposite temporal sign


def test_too_small_or_malformed_inputs_are_refused():
    with pytest.raises(ValueError, match="frames"):
        lbpsip_features(noise_clip(0, shape=(2, 20, 20)))
    with pytest.raises(ValueError, match="integer"):
        lbpsip_features(noise_clip(0).astype(np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 2\)"):
        hoof_features(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="segments"):
        hog3d_features(noise_clip(0, shape=(2, 20, 20)), segments=3)


# --- each beats chance through the LOSO SVM ---------------------------------------------------


def test_hoof_beats_chance_on_motion_direction():
    accuracy = loso_accuracy(direction_flow, lambda f: hoof_features(f, (2, 2), 8))
    assert accuracy > 0.8  # chance: 1/3


def test_hoof_sequence_has_bins_per_block_and_segment():
    rng = np.random.default_rng(0)
    features = hoof_sequence_features(blob_clip(rng, 0), (2, 3), 8, 3)
    assert features.shape == (hoof_sequence_length((2, 3), 8, 3),) == (3 * 6 * 8,)


def test_hoof_sequence_keeps_each_segments_motion_in_its_own_bins():
    # Six frame pairs, three segments: right, then down, then still.
    flows = np.zeros((6, 12, 12, 2), np.float32)
    flows[0:2, ..., 0] = 1.0  # right: theta 0, bin 4 of 8
    flows[2:4, ..., 1] = 2.0  # down (+v): theta pi/2, the last bin
    histograms = hoof_sequence_histograms(flows, (2, 2), 8, 3)
    assert histograms.shape == (3, 4, 8)
    assert np.allclose(histograms[0, :, 4], 1) and np.allclose(histograms[1, :, 7], 1)
    assert not histograms[2].any()
    with pytest.raises(ValueError, match="at least segments"):
        hoof_sequence_histograms(flows[:2], (2, 2), 8, 3)


def test_hoof_sequence_beats_chance_on_a_moving_blob():
    accuracy = loso_accuracy(blob_clip, lambda c: hoof_sequence_features(c, (2, 2), 8, 2))
    assert accuracy > 0.6


def test_lbpsip_beats_chance_on_a_moving_blob():
    accuracy = loso_accuracy(blob_clip, lambda c: lbpsip_features(c, (2, 2)))
    assert accuracy > 0.6


def test_hog3d_beats_chance_on_a_moving_blob():
    accuracy = loso_accuracy(blob_clip, lambda c: hog3d_features(c, (2, 2), 2))
    assert accuracy > 0.6
