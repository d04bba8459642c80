"""The workflow's per-subject features job (`mer method-features-clips`) writes, for each
sample, what `mer method-features` writes for it alone, then the manifest; a bad source stops
it with the file's name and no manifest."""

import json

import cv2
import numpy as np
import pytest

from mer import cli

SECTION = json.dumps({"size": 32, "blocks": [2, 2]})


def write_clip(clip_dir, seed, n_frames=12, size=40):
    rng = np.random.default_rng(seed)
    clip_dir.mkdir(parents=True)
    for n in range(1, n_frames + 1):
        cv2.imwrite(str(clip_dir / f"img{n}.png"), rng.integers(0, 255, (size, size), np.uint8))


@pytest.fixture
def two_clips(tmp_path):
    clips = []
    for i, sample in enumerate(["sub01_clip01", "sub01_clip02"]):
        write_clip(tmp_path / "frames" / sample, seed=i)
        source = str(tmp_path / "frames" / sample)
        clips.append(dict(sample=sample, source=source, onset=2, offset=11))
    return clips


def test_the_subject_job_writes_what_the_one_sample_verb_writes(tmp_path, two_clips):
    for clip in two_clips:
        out = tmp_path / "one" / f"{clip['sample']}.npy"
        argv = ["method-features", "lbptop", clip["source"], str(out), "--params-json", SECTION,
                "--onset", "2", "--offset", "11"]  # fmt: skip
        assert cli.main(argv) == 0
    manifest = tmp_path / "many/subjects/sub01.tsv"
    clips_json = json.dumps(two_clips)
    argv = ["method-features-clips", "lbptop", str(tmp_path / "many"), "--clips-json", clips_json,
            "--manifest", str(manifest), "--params-json", SECTION]  # fmt: skip
    assert cli.main(argv) == 0
    samples = [clip["sample"] for clip in two_clips]
    assert [line.split("\t")[0] for line in manifest.read_text().splitlines()[1:]] == samples
    for sample in samples:
        one = np.load(tmp_path / "one" / f"{sample}.npy")
        assert one.size > 0
        np.testing.assert_array_equal(np.load(tmp_path / "many" / f"{sample}.npy"), one)


def test_a_missing_frame_stops_the_job_naming_its_clip_without_a_manifest(
    tmp_path, two_clips, capsys
):
    (tmp_path / "frames/sub01_clip02/img7.png").unlink()
    manifest = tmp_path / "many/subjects/sub01.tsv"
    clips_json = json.dumps(two_clips)
    argv = ["method-features-clips", "lbptop", str(tmp_path / "many"), "--clips-json", clips_json,
            "--manifest", str(manifest), "--params-json", SECTION]  # fmt: skip
    assert cli.main(argv) == 2
    error = capsys.readouterr().err
    assert "sub01_clip02" in error and "[7]" in error
    assert not manifest.exists()
