"""The workflow's per-subject preprocessing jobs (`mer evm-clips`, `flow-clips`, `masks-clips`)
write, for each clip, exactly what the one-clip verbs write, then the manifest; a bad clip
stops the job with its name and no manifest (so Snakemake redoes the subject)."""

import json

import cv2
import numpy as np
import pytest

from mer import cli
from mer.store import files

EVM_OPTIONS = ["--low-hz=0.5", "--high-hz=20", "--fps=200"]
MAGNIFY = ["--low-hz=0.5", "--high-hz=20"]


def write_clip(clip_dir, seed, n_frames=20, size=32):
    """A moving blob on noise, frames img1..imgN (PNG)."""
    rng = np.random.default_rng(seed)
    clip_dir.mkdir(parents=True)
    for n in range(1, n_frames + 1):
        frame = rng.integers(90, 110, (size, size)).astype(np.uint8)
        cv2.circle(frame, (10 + n // 4, 16), 5, 200, -1)
        cv2.imwrite(str(clip_dir / f"img{n}.png"), frame)


@pytest.fixture
def two_clips(tmp_path):
    clips = []
    for i, sample in enumerate(["sub01_clip01", "sub01_clip02"]):
        frames_dir = tmp_path / "frames" / sample
        write_clip(frames_dir, seed=i)
        clips.append(
            dict(sample=sample, frames_dir=str(frames_dir), onset=1, apex=8, offset=20, fps=200.0)
        )
    return clips


def run(*argv):
    assert cli.main([str(a) for a in argv]) == 0


def manifest_samples(path):
    return [line.split("\t")[0] for line in path.read_text().splitlines()[1:]]


def test_subject_verbs_write_what_the_one_clip_verbs_write(tmp_path, two_clips):
    one, many = tmp_path / "one", tmp_path / "many"
    for clip in two_clips:
        sample, timing = clip["sample"], ["--onset=1", "--apex=8", "--offset=20"]
        run("evm", clip["frames_dir"], one / "evm" / f"{sample}.npz", *timing, *EVM_OPTIONS)
        run("flow", one / "evm" / f"{sample}.npz", one / "flow" / f"{sample}.npz",
            "--method", "farneback")  # fmt: skip
        preview = one / "masks" / "preview" / f"{sample}.png"
        run("masks", one / "evm" / f"{sample}.npz", one / "flow" / f"{sample}.npz",
            one / "masks" / f"{sample}.npz", "--preview", preview,
            "--label", f"{sample} others")  # fmt: skip
    run("evm-clips", many / "evm", "--clips-json", json.dumps(two_clips),
        "--manifest", many / "evm/subjects/sub01.tsv", *MAGNIFY)  # fmt: skip
    samples = [clip["sample"] for clip in two_clips]
    run("flow-clips", many / "evm", many / "flow", "--samples", ",".join(samples),
        "--manifest", many / "flow/subjects/sub01.tsv", "--method", "farneback")  # fmt: skip
    labels = {sample: f"{sample} others" for sample in samples}
    run("masks-clips", many / "evm", many / "flow", many / "masks", "--labels-json",
        json.dumps(labels), "--manifest", many / "masks/subjects/sub01.tsv")  # fmt: skip

    stages = {
        "evm": ("onset_gray", "apex_gray", "onset_magnified", "apex_magnified"),
        "flow": ("flow_uv",),
        "masks": ("flow_image", "mask", "apex_gray", "masked_apex"),
    }
    for stage, keys in stages.items():
        assert manifest_samples(many / stage / "subjects/sub01.tsv") == samples
        for sample in samples:
            expected = files.load_npz(one / stage / f"{sample}.npz", *keys)
            written = files.load_npz(many / stage / f"{sample}.npz", *keys)
            for key in keys:
                np.testing.assert_array_equal(written[key], expected[key], err_msg=f"{stage} {key}")
    for sample in samples:
        preview = cv2.imread(str(many / "masks/preview" / f"{sample}.png"))
        assert np.array_equal(preview, cv2.imread(str(one / "masks/preview" / f"{sample}.png")))


def test_a_bad_clip_stops_the_job_naming_it_and_leaves_no_manifest(tmp_path, two_clips, capsys):
    (tmp_path / "frames/sub01_clip02/img5.png").unlink()  # the second clip loses a frame
    manifest = tmp_path / "evm/subjects/sub01.tsv"
    rc = cli.main(
        ["evm-clips", str(tmp_path / "evm"), "--clips-json", json.dumps(two_clips),
         "--manifest", str(manifest), *MAGNIFY]
    )  # fmt: skip
    error = capsys.readouterr().err
    assert rc == 2 and "sub01_clip02" in error and "[5]" in error
    assert not manifest.exists()
    # The first clip's artifact is complete (written atomically); nothing half-written remains.
    assert files.load_npz(tmp_path / "evm/sub01_clip01.npz", "apex_gray")
    assert not list((tmp_path / "evm").glob(".*tmp*"))


def test_a_clip_list_without_a_timing_field_is_refused_by_name(tmp_path, two_clips, capsys):
    del two_clips[1]["apex"]
    rc = cli.main(
        ["evm-clips", str(tmp_path / "evm"), "--clips-json", json.dumps(two_clips),
         "--manifest", str(tmp_path / "m.tsv"), *MAGNIFY]
    )  # fmt: skip
    error = capsys.readouterr().err
    assert rc == 2 and "sub01_clip02" in error and "apex" in error
    assert not (tmp_path / "evm").exists()
