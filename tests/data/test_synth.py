import hashlib
from dataclasses import replace

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from mer.data import samples, synth
from mer.data.frames import list_frames


def test_same_seed_gives_byte_identical_frames_and_another_seed_differs(tiny_params):
    plan = synth.plan_dataset(tiny_params)[0]
    first = synth.render_clip(plan, tiny_params)["frames"]
    again = synth.render_clip(plan, tiny_params)["frames"]
    assert first.tobytes() == again.tobytes()
    other_params = replace(tiny_params, seed=tiny_params.seed + 1)
    other = synth.render_clip(synth.plan_dataset(other_params)[0], other_params)["frames"]
    assert first.shape != other.shape or first.tobytes() != other.tobytes()


def test_saved_ground_truth_flow_is_the_motion_between_onset_and_apex():
    # Clean clips (no noise, flicker or blink) so that only geometry separates the frames;
    # a 1 px amplitude makes the motion dominate the uint8 quantisation.
    params = synth.SynthParams.from_dict(
        synth.SUBPIXEL  # lossless PNG frames at 128 px
        | dict(
            seed=1,
            subjects=2,
            clips_per_subject=3,
            amplitude_px=1.0,
            amplitude_jitter=0.0,
            noise_sigma=0.0,
            flicker=0.0,
            blink_prob=0.0,
            drift_px=0.4,
        )
    )
    for plan in synth.plan_dataset(params)[:4]:
        clip = synth.render_clip(plan, params)
        onset = clip["frames"][plan.onset - plan.first_frame].astype(float)
        apex = clip["frames"][plan.apex - plan.first_frame].astype(float)
        flow_uv = clip["flow_uv"]
        yy, xx = np.mgrid[0 : apex.shape[0], 0 : apex.shape[1]].astype(float)

        def warp_apex_back(uv, apex=apex, yy=yy, xx=xx):  # onset(p) ~ apex(p + uv(p))
            return ndimage.map_coordinates(
                apex, [yy + uv[..., 1], xx + uv[..., 0]], order=3, mode="nearest"
            )

        moving = np.sqrt((flow_uv**2).sum(-1)) > 0.05
        inner = np.zeros_like(moving)
        inner[4:-4, 4:-4] = True
        region = moving & inner
        residual_true = np.abs(warp_apex_back(flow_uv) - onset)[region].mean()
        residual_none = np.abs(apex - onset)[region].mean()
        residual_wrong = np.abs(warp_apex_back(-flow_uv) - onset)[region].mean()
        assert residual_true < 0.5 * residual_none, (plan, residual_true, residual_none)
        assert residual_true < 0.35 * residual_wrong


def test_apex_amplitude_is_sub_pixel_in_the_subpixel_preset():
    params = synth.SynthParams.from_dict(
        synth.SUBPIXEL | dict(seed=0, subjects=2, clips_per_subject=2, drift_px=0.0)
    )
    for plan in synth.plan_dataset(params):
        clip = synth.render_clip(plan, params)
        peak = np.sqrt((clip["flow_uv"] ** 2).sum(-1)).max()
        assert 0.15 < peak < 0.45
        assert abs(peak - clip["amplitude_px"]) < 0.02


def test_class_counts_follow_the_priors():
    params = synth.SynthParams(seed=11, subjects=200, clips_per_subject=20)
    labels = pd.Series([p.label for p in synth.plan_dataset(params)])
    shares = labels.value_counts(normalize=True)
    for label, prior in synth.CASME2_PRIORS.items():
        assert abs(shares[label] - prior) < 0.04, (label, shares[label], prior)


def test_subjects_have_their_own_class_mix():
    params = synth.SynthParams(seed=5, subjects=6, clips_per_subject=30)
    table = pd.DataFrame(
        [(p.subject, p.label) for p in synth.plan_dataset(params)], columns=["subject", "label"]
    )
    shares = pd.crosstab(table.subject, table.label, normalize="index")
    assert shares.std().max() > 0.05


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    subjects=st.integers(2, 12),
    clips=st.integers(1, 6),
    frames_min=st.integers(16, 60),
    extra=st.integers(0, 50),
)
def test_every_subject_has_a_clip_with_ordered_annotations(
    seed, subjects, clips, frames_min, extra
):
    params = synth.SynthParams(
        seed=seed,
        subjects=subjects,
        clips_per_subject=clips,
        frames_min=frames_min,
        frames_max=frames_min + extra,
    )
    plans = synth.plan_dataset(params)
    assert {p.subject for p in plans} == {f"sub{s + 1:02d}" for s in range(subjects)}
    for p in plans:
        assert p.first_frame < p.onset < p.apex < p.offset < p.first_frame + p.n_frames - 1
        assert frames_min <= p.n_frames <= frames_min + extra


def test_written_dataset_travels_the_real_data_path(tmp_path, tiny_params):
    out = tmp_path / "dataset"
    annotations = synth.write_dataset(tiny_params, out)
    result = samples.load_table(
        out / "annotations.csv", out / "frames", list(synth.CASME2_PRIORS), "synthetic"
    )
    assert result.skipped == []
    assert len(result.samples) == len(annotations) == len(synth.plan_dataset(tiny_params))
    first = result.samples.iloc[0]
    frames = list_frames(first.frames_dir)
    assert min(frames) == first.first_frame > 0  # numbered like a real dataset, not from 0
    assert not list(tmp_path.glob(".*tmp*"))  # nothing half-written left behind
    truth = np.load(out / "ground_truth" / first.subject / f"{first.video}.npz")
    plan = next(
        p
        for p in synth.plan_dataset(tiny_params)
        if p.video == first.video and p.subject == first.subject
    )
    assert truth["flow_uv"].shape == (plan.height, plan.width, 2)


def test_each_clip_has_its_own_frame_size_around_the_configured_height():
    params = synth.SynthParams(seed=0, subjects=6, clips_per_subject=4)
    plans = synth.plan_dataset(params)
    heights = np.array([p.height for p in plans])
    assert len(set(heights)) > 5
    assert heights.min() >= 293 and heights.max() <= 331
    assert all(abs(p.width - round(0.83 * p.height)) <= 1 for p in plans)


def test_the_subpixel_preset_renders_the_frames_it_always_did():
    # First bytes of the first clip of seed 0, 2 subjects x 2 clips, before the calibration.
    params = synth.SynthParams.from_dict(synth.SUBPIXEL | dict(subjects=2, clips_per_subject=2))
    plan = synth.plan_dataset(params)[0]
    frames = synth.render_clip(plan, params)["frames"]
    assert frames.shape[1:] == (128, 128)
    digest = hashlib.sha256(frames.tobytes()).hexdigest()
    assert digest == "1627ebabfadc608b0827f5a65179a467f613a3ab33ce7718abfeebe556febfc0"
