from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from mer.methods import elrcn
from mer.methods.elrcn import ElrcnSettings, flip_horizontally, train_elrcn_fold
from mer.methods.elrcn_inputs import CHANNELS, optical_strain, sequence_inputs, step_frames

torch.set_num_threads(1)

CLASSES = ["left", "right", "still"]
# Small enough for a fold in well under a second on one core.
TINY = {
    "cnn_features": 8,
    "lstm_hidden": 8,
    "batch_size": 4,
    "max_epochs": 3,
    "patience": 2,
    "validation_fraction": 0.34,
}


def textured_frame(size: int, seed: int = 0) -> np.ndarray:
    """Smooth random texture on the 0..255 scale: flow has something to track."""
    import cv2

    noise = np.random.default_rng(seed).uniform(0, 255, (size, size)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), size / 16)
    return np.interp(smooth, (smooth.min(), smooth.max()), (30, 220)).astype(np.float32)


def blob_clip(direction: str, frames: int, size: int, seed: int) -> np.ndarray:
    """A bright blob on a textured background, moving left, right or not at all."""
    rng = np.random.default_rng(seed)
    background = textured_frame(size, seed) * 0.5
    yy, xx = np.mgrid[:size, :size]
    centre_y, centre_x = size / 2 + rng.uniform(-2, 2), size / 2 + rng.uniform(-2, 2)
    speed = {"left": -0.4, "right": 0.4, "still": 0.0}[direction] * size / 32
    clip = []
    for t in range(frames):
        x = centre_x + speed * t
        blob = 120 * np.exp(-((yy - centre_y) ** 2 + (xx - x) ** 2) / (2 * (size / 8) ** 2))
        clip.append(background + blob + rng.normal(0, 1, (size, size)))
    return np.clip(np.stack(clip), 0, 255).astype(np.uint8)


def tiny_dataset(subjects: int = 3, per_class: int = 1, steps: int = 4, size: int = 16):
    """Random inputs, labels and subjects: enough to run a fold, nothing to learn."""
    rng = np.random.default_rng(0)
    inputs, labels, subject_of = {}, {}, {}
    for s in range(subjects):
        for c, name in enumerate(CLASSES):
            for k in range(per_class):
                sample = f"s{s}_{name}_{k}"
                inputs[sample] = rng.normal(0, 1, (steps, len(CHANNELS), size, size)).astype(
                    np.float32
                )
                inputs[sample][:, 0] += c - 1  # a little signal in u
                labels[sample], subject_of[sample] = name, f"sub{s}"
    return inputs, labels, subject_of


# ---- inputs --------------------------------------------------------------------------------


def test_steps_are_ordered_by_frame_number_whatever_the_list_order():
    numbers = np.array([105, 101, 109, 100, 103, 108, 102, 107, 104, 106])
    positions, chosen = step_frames(numbers, 4)
    assert list(chosen) == [100, 103, 106, 109]
    assert list(numbers[positions]) == list(chosen)


def test_steps_follow_frame_numbers_across_a_gap():
    # Frames 100..104 then 120..124: even spacing in frame number, not in list position.
    numbers = np.r_[100:105, 120:125]
    _, chosen = step_frames(numbers, 3)
    assert list(chosen) == [100, 104, 124] or list(chosen) == [100, 120, 124]
    assert chosen[0] == 100 and chosen[-1] == 124


def test_sequence_inputs_of_a_shuffled_clip_equal_the_sorted_clip_and_have_the_documented_shape():
    clip = blob_clip("right", 12, 32, seed=1)
    numbers = np.arange(200, 212)
    shuffle = np.random.default_rng(0).permutation(12)
    ordered = sequence_inputs(clip, numbers, steps=5, size=24, flow_method="farneback")
    shuffled = sequence_inputs(clip[shuffle], numbers[shuffle], 5, 24, "farneback")
    assert ordered["inputs"].shape == (5, len(CHANNELS), 24, 24)
    assert ordered["inputs"].dtype == np.float32
    assert list(ordered["frame_numbers"]) == sorted(ordered["frame_numbers"])
    np.testing.assert_array_equal(ordered["frame_numbers"], shuffled["frame_numbers"])
    np.testing.assert_array_equal(ordered["inputs"], shuffled["inputs"])
    # Step 0 is the onset: no motion; the gray channel is the frame itself.
    assert not ordered["inputs"][0, :3].any()
    # The blob moves right: mean u at the last step is positive.
    assert ordered["inputs"][-1, 0].mean() > 0.05


def test_strain_of_a_uniform_translation_is_zero_and_of_a_stretch_is_its_rate():
    translation = np.zeros((20, 24, 2), np.float32)
    translation[..., 0], translation[..., 1] = 1.7, -0.6
    assert np.abs(optical_strain(translation)).max() < 1e-6
    stretch = np.zeros((20, 24, 2), np.float32)
    stretch[..., 0] = 0.05 * np.arange(24)[None, :]  # u = 0.05 x: e_xx = 0.05
    np.testing.assert_allclose(optical_strain(stretch), 0.05, rtol=1e-5)


def test_strain_channel_of_a_translating_clip_is_near_zero():
    size, frames = 32, 6
    texture = textured_frame(size + 8)
    clip = np.stack([texture[4:-4, 4 - t // 2 : 4 - t // 2 + size] for t in range(frames)])
    out = sequence_inputs(clip.astype(np.uint8), np.arange(frames), 3, size, "farneback")
    interior = out["inputs"][-1, :, 6:-6, 6:-6]
    assert abs(interior[0].mean()) > 0.5  # it did move
    assert interior[2].mean() < 0.1 * abs(interior[0].mean())


def test_flip_negates_u_and_mirrors_every_channel():
    sequences = torch.randn(2, 3, len(CHANNELS), 5, 7)
    flipped = flip_horizontally(sequences.clone())
    u, v = CHANNELS.index("u"), CHANNELS.index("v")
    torch.testing.assert_close(flipped[..., u, :, :], -sequences[..., u, :, :].flip(-1))
    torch.testing.assert_close(flipped[..., v, :, :], sequences[..., v, :, :].flip(-1))
    torch.testing.assert_close(flip_horizontally(flipped), sequences)


def test_sequence_inputs_cost_at_most_seconds_per_clip():
    clip = blob_clip("left", 60, 128, seed=2)
    start = time.perf_counter()
    sequence_inputs(clip, np.arange(60), steps=10, size=64, flow_method="farneback")
    assert time.perf_counter() - start < 3.0


# ---- one fold ------------------------------------------------------------------------------


def test_a_fold_never_trains_or_validates_on_the_held_out_subject(monkeypatch):
    seen = {"train": set(), "validate": set()}
    train_epoch, validate = elrcn._train_epoch, elrcn._validate

    def spy_train(model, optimiser, fit_set, *args):
        seen["train"] |= set(fit_set.subjects)
        return train_epoch(model, optimiser, fit_set, *args)

    def spy_validate(model, val_set, *args):
        seen["validate"] |= set(val_set.subjects)
        return validate(model, val_set, *args)

    monkeypatch.setattr(elrcn, "_train_epoch", spy_train)
    monkeypatch.setattr(elrcn, "_validate", spy_validate)
    inputs, labels, subjects = tiny_dataset(subjects=4)
    predictions, history, fold = train_elrcn_fold(
        inputs, labels, subjects, "sub2", CLASSES, 0, TINY, log=lambda line: None
    )
    assert "sub2" not in fold["train_subjects"] + fold["validation_subjects"]
    assert fold["test_subjects"] == ["sub2"] and fold["validation_subjects"]
    assert seen["train"] == set(fold["train_subjects"])
    assert seen["validate"] == set(fold["validation_subjects"])
    assert "sub2" not in seen["train"] | seen["validate"]
    assert set(predictions["subject"]) == {"sub2"} and len(predictions) == len(CLASSES)
    columns = ["sample", "subject", "true_label", "predicted_label"]
    assert list(predictions.columns) == columns + [f"p_{c}" for c in CLASSES]
    np.testing.assert_allclose(predictions.filter(like="p_").sum(axis=1), 1, rtol=1e-5)
    assert len(history) == fold["epochs_run"] and 1 <= fold["best_epoch"] <= len(history)


def test_the_same_seed_gives_identical_predictions_and_another_seed_differs():
    inputs, labels, subjects = tiny_dataset()

    def run(seed):
        return train_elrcn_fold(inputs, labels, subjects, "sub0", CLASSES, seed, TINY, log=len)

    first, second, other = run(1)[0], run(1)[0], run(2)[0]
    probabilities = [frame.filter(like="p_").to_numpy() for frame in (first, second, other)]
    np.testing.assert_array_equal(probabilities[0], probabilities[1])
    assert not np.array_equal(probabilities[0], probabilities[2])


def test_settings_refuse_unknown_names_and_values():
    with pytest.raises(ValueError, match="unknown ELRCN settings"):
        ElrcnSettings.from_dict({"lstm_units": 3})
    with pytest.raises(ValueError, match="enrichment"):
        ElrcnSettings.from_dict({"enrichment": "both"})


def test_spatial_enrichment_stacks_the_channels_into_one_cnn():
    te = elrcn.ELRCN(3, ElrcnSettings(cnn_features=8, lstm_hidden=8))
    se = elrcn.ELRCN(3, ElrcnSettings(enrichment="spatial", cnn_features=8, lstm_hidden=8))
    assert sorted(te.encoders) == ["flow", "gray", "strain"] and list(se.encoders) == ["stacked"]
    logits = te(torch.randn(2, 4, len(CHANNELS), 16, 16))
    assert logits.shape == (2, 3) and se(torch.randn(2, 4, len(CHANNELS), 16, 16)).shape == (2, 3)


@pytest.mark.slow
def test_loso_on_moving_blobs_beats_chance():
    subjects, per_class, frames = 4, 3, 10
    inputs, labels, subject_of = {}, {}, {}
    for s in range(subjects):
        for name in CLASSES:
            for k in range(per_class):
                sample = f"s{s}_{name}_{k}"
                clip = blob_clip(name, frames, 32, seed=100 * s + 10 * CLASSES.index(name) + k)
                inputs[sample] = sequence_inputs(clip, np.arange(frames), 5, 32, "farneback")[
                    "inputs"
                ]
                labels[sample], subject_of[sample] = name, f"sub{s}"
    settings = dict(TINY, max_epochs=40, patience=8, cnn_features=16, lstm_hidden=16)
    correct = 0
    for held_out in sorted(set(subject_of.values())):
        predictions, _, _ = train_elrcn_fold(
            inputs, labels, subject_of, held_out, CLASSES, 0, settings, log=len
        )
        correct += int((predictions.true_label == predictions.predicted_label).sum())
    accuracy = correct / len(inputs)
    assert accuracy > 1 / len(CLASSES) + 0.2, accuracy


# ---- the verbs -----------------------------------------------------------------------------


def run_verb(*argv: str) -> int:
    import argparse

    from mer.methods import elrcn_cli

    parser = argparse.ArgumentParser()
    elrcn_cli.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_verbs_make_inputs_from_frames_on_disk_then_train_a_fold(tmp_path):
    import cv2
    import pandas as pd

    from mer.store.files import load_npz

    rows = []
    for s in range(3):
        for name in ("left", "right"):
            sample = f"s{s}_{name}"
            frames_dir = tmp_path / "frames" / sample
            frames_dir.mkdir(parents=True)
            # Numbers 8..13: "img10" sorts before "img8" by name, not by number.
            for t, frame in enumerate(blob_clip(name, 6, 24, seed=s)):
                cv2.imwrite(str(frames_dir / f"img{8 + t}.png"), frame)
            out = tmp_path / "inputs" / f"{sample}.npz"
            argv = ["elrcn-inputs", str(frames_dir), str(out), "--onset", "8", "--offset", "13"]
            assert run_verb(*argv, "--steps", "3", "--size", "16", "--flow-method", "dis") == 0
            rows.append({"sample": sample, "subject": f"sub{s}", "label": name})
    saved = load_npz(tmp_path / "inputs" / "s0_left.npz", "inputs", "frame_numbers")
    assert list(saved["frame_numbers"]) == [8, 10, 13] or list(saved["frame_numbers"]) == [
        8,
        11,
        13,
    ]
    assert saved["inputs"].shape == (3, len(CHANNELS), 16, 16)
    pd.DataFrame(rows).to_csv(tmp_path / "samples.tsv", sep="\t", index=False)
    fold_dir = tmp_path / "fold"
    settings = '{"cnn_features": 8, "lstm_hidden": 8, "max_epochs": 2}'
    code = run_verb(
        "elrcn-train", str(fold_dir), "--held-out", "sub1", "--samples-tsv",
        str(tmp_path / "samples.tsv"), "--inputs-dir", str(tmp_path / "inputs"),
        "--classes", "left,right", "--config-json", settings,
    )  # fmt: skip
    assert code == 0
    predictions = pd.read_csv(fold_dir / "predictions.csv", dtype={"subject": str})
    assert set(predictions["subject"]) == {"sub1"} and len(predictions) == 2
    assert (fold_dir / "history.csv").is_file() and (fold_dir / "fold.json").is_file()
