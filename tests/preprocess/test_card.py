"""The motion card: its measures on pairs with known noise and motion, the verb's files, and
(slow) the default synthetic world measured inside real CASME II's 10-90 % ranges."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from mer.data import synth
from mer.preprocess import card


def textured_face(height=120, width=100, seed=0):
    rng = np.random.default_rng(seed)
    return 128 + 40 * ndimage.gaussian_filter(rng.standard_normal((height, width)), 2.0) / 0.14


@pytest.mark.parametrize("sigma", [1.0, 1.5, 2.0, 3.0])
def test_noise_sigma_recovers_the_sensor_noise_of_two_frames(sigma):
    rng = np.random.default_rng(1)
    base = textured_face(160, 140)
    frames = [np.clip(np.rint(base + rng.normal(0, sigma, base.shape)), 0, 255) for _ in "ab"]
    measured = card.noise_sigma(*(f.astype(np.uint8) for f in frames))
    # Rounding to uint8 adds 1/12 gray level^2 of variance per frame.
    assert measured == pytest.approx(np.sqrt(sigma**2 + 1 / 12), rel=0.08)


def test_a_pure_translation_is_global_motion_with_no_residual():
    onset = textured_face()
    apex = ndimage.shift(onset, (0.0, 1.5), order=3, mode="nearest")  # content moves 1.5 px right
    measures = card.motion_measures(onset, apex)
    assert measures["global_300"] == pytest.approx(1.5 * 300 / 120, rel=0.1)
    assert measures["residual_p95_300"] < 0.25 * measures["global_300"]


def write_tiny_samples(tmp_path):
    params = synth.SynthParams(
        seed=2,
        subjects=2,
        clips_per_subject=1,
        frame_size=64,
        frame_size_jitter=0.0,
        frames_min=20,
        frames_max=24,
    )
    annotations = synth.write_dataset(params, tmp_path / "d")
    table = annotations.assign(
        sample=annotations.subject + "_" + annotations.video,
        frames_dir=[
            str(tmp_path / "d/frames" / s / v) for s, v in annotations[["subject", "video"]].values
        ],
    )
    masks_dir = tmp_path / "masks"
    masks_dir.mkdir()
    for sample in table["sample"]:
        mask = np.zeros((64, 53), bool)
        mask[:16] = True  # a quarter of the frame
        np.savez(masks_dir / f"{sample}.npz", mask=mask)
    table.to_csv(tmp_path / "samples.tsv", sep="\t", index=False)
    return table, masks_dir


def test_the_verb_writes_one_row_per_clip_a_summary_and_a_figure(tmp_path):
    table, masks_dir = write_tiny_samples(tmp_path)
    out = tmp_path / "card"
    subprocess.run(
        [sys.executable, "-m", "mer", "motion-card", str(tmp_path / "samples.tsv"), str(out),
         "--masks-dir", str(masks_dir), "--title", "tiny"],
        check=True, capture_output=True,
    )  # fmt: skip
    clips = pd.read_csv(out / "clips.tsv", sep="\t")
    assert list(clips["sample"]) == list(table["sample"])
    assert (clips["frames"] == table["offset"] - table["onset"] + 1).all()
    assert (clips["height"] == 64).all() and (clips["width"] == 53).all()  # aspect 0.83
    assert clips["mask_coverage"].tolist() == pytest.approx([0.25] * len(clips))
    summary = pd.read_csv(out / "summary.tsv", sep="\t")
    assert list(summary["measure"]) == list(card.MEASURES)
    assert (out / "card.png").stat().st_size > 10_000


@pytest.mark.slow
def test_the_default_synthetic_world_measures_inside_real_casme2_ranges(tmp_path):
    params = synth.SynthParams(seed=0, subjects=4, clips_per_subject=3)
    annotations = synth.write_dataset(params, tmp_path / "d", workers=2)
    table = annotations.assign(
        sample=annotations.subject + "_" + annotations.video,
        frames_dir=[
            str(tmp_path / "d/frames" / s / v) for s, v in annotations[["subject", "video"]].values
        ],
    )
    summary = card.summarise(card.card_table(table, workers=2)).set_index("measure")
    for measure, (low, _, high) in card.REAL_CASME2.items():
        if measure == "mask_coverage":  # needs the masks stage
            continue
        assert low <= summary.loc[measure, "median"] <= high, (measure, summary.loc[measure])
    assert 1.0 <= summary.loc["noise_sigma", "median"] <= 2.0
    # Real frames are JPEG, and so are the synthetic ones by default.
    assert next((tmp_path / "d/frames/sub01/clip01").iterdir()).suffix == ".jpg"
