"""Interruption (kill -9) during shard writing and training; resumed training ends
bit-identical to an uninterrupted run on CPU."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_train import CLASSES, make_shards

from conftest import REPO
from mer.learn import shards, train

SRC = REPO / "src"
# Enough epochs to kill in the middle; early stopping on, so the best-epoch state is resumed too.
RESUMABLE = {
    "max_epochs": 4,
    "patience": 4,
    "head_epochs": 5,
    "dense_units": 16,
    "batch_size": 16,
    "batchnorm_rows": 64,
}
# One epoch of one stream, for the tests that only ask whether a resume file is written or
# trusted (a three-stream resume file is ~400 MB to write).
ONE_EPOCH = {**RESUMABLE, "max_epochs": 1, "streams": ["flow_image"]}


def mer_command(*args) -> list[str]:
    return [sys.executable, "-m", "mer", *map(str, args)]


def env() -> dict:
    return {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


@pytest.fixture(scope="module")
def three_subjects(tmp_path_factory):
    labels = {"s1": [0, 1, 2, 0], "s2": [0, 1, 2, 1], "s3": [0, 1, 2, 2]}
    return make_shards(tmp_path_factory.mktemp("resume"), labels)


def train_command(out_dir, shard_paths):
    return mer_command(
        "train",
        out_dir,
        "--held-out",
        "s1",
        "--shards",
        *shard_paths,
        "--config-json",
        json.dumps(RESUMABLE),
        "--seed",
        "4",
        "--resume-every",
        "0",  # save after every epoch, so that the test can kill between two saves
    )


def wait_for(condition, process, seconds=120):
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, "the job ended before it could be killed"
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def epochs_in(resume_path: Path) -> int:
    try:
        return len(torch.load(resume_path, weights_only=True)["history"])
    except (FileNotFoundError, RuntimeError, EOFError):
        return 0


@pytest.mark.slow
def test_killed_training_resumes_after_its_last_epoch_and_ends_identical(three_subjects, tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(train_command(whole, three_subjects), env=env(), check=True, capture_output=True)
    assert not (whole / "resume.pt").exists(), "a completed fold keeps no resume file"

    log = open(tmp_path / "killed.log", "w")
    process = subprocess.Popen(train_command(killed, three_subjects), env=env(), stdout=log)
    # Each epoch replaces resume.pt (new mtime); stat it rather than load it while polling.
    saves = set()

    def saved_twice():
        try:
            saves.add((killed / "resume.pt").stat().st_mtime_ns)
        except FileNotFoundError:
            pass
        return len(saves) >= 2

    wait_for(saved_twice, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = epochs_in(killed / "resume.pt")
    assert 2 <= done < RESUMABLE["max_epochs"]
    assert not (killed / "predictions.csv").exists()

    rerun = subprocess.run(
        train_command(killed, three_subjects), env=env(), check=True, capture_output=True, text=True
    )
    assert f"continuing at epoch {done + 1}" in rerun.stdout
    first_epoch_line = next(line for line in rerun.stdout.splitlines() if line.startswith("epoch"))
    assert first_epoch_line.startswith(f"epoch {done + 1} ")
    assert not (killed / "resume.pt").exists()

    timing = ["seconds"]
    pd.testing.assert_frame_equal(
        pd.read_csv(whole / "history.csv").drop(columns=timing),
        pd.read_csv(killed / "history.csv").drop(columns=timing),
        check_exact=True,
    )
    assert (whole / "predictions.csv").read_text() == (killed / "predictions.csv").read_text()
    assert (whole / "fold.json").read_text() == (killed / "fold.json").read_text()
    whole_state = torch.load(whole / "checkpoint.pt", weights_only=True)["state_dict"]
    killed_state = torch.load(killed / "checkpoint.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(whole_state[k], killed_state[k]) for k in whole_state)


def test_no_resume_file_is_written_before_its_interval_has_passed(three_subjects, tmp_path):
    # The default CLI interval (60 s) is longer than this whole fold: nothing is written. With
    # an interval of 0 a file is written after every epoch (the next test and the kill test).
    resume = tmp_path / "resume.pt"
    quick = train.TrainConfig.from_dict(ONE_EPOCH)
    train.train_fold(
        three_subjects, "s1", quick, 4, log=lambda _: None, resume_path=resume, resume_every=3600
    )
    assert not resume.exists()


def test_a_resume_file_of_another_configuration_is_not_continued(three_subjects, tmp_path):
    resume = tmp_path / "resume.pt"
    quick = train.TrainConfig.from_dict(ONE_EPOCH)
    train.train_fold(three_subjects, "s1", quick, 4, log=lambda _: None, resume_path=resume)
    assert epochs_in(resume) == 1
    lines = []
    other = train.TrainConfig.from_dict({**ONE_EPOCH, "learning_rate": 0.5})
    result = train.train_fold(three_subjects, "s1", other, 4, log=lines.append, resume_path=resume)
    assert any("another configuration" in line for line in lines)
    assert list(result.history.epoch) == [1]
    assert not any(line.startswith("resumed") for line in lines)


def test_a_damaged_resume_file_is_ignored_not_trusted(three_subjects, tmp_path):
    resume = tmp_path / "resume.pt"
    resume.write_bytes(b"PK\x03\x04 truncated")
    lines = []
    quick = train.TrainConfig.from_dict(ONE_EPOCH)
    result = train.train_fold(three_subjects, "s1", quick, 4, log=lines.append, resume_path=resume)
    assert any("ignoring unreadable epoch checkpoint" in line for line in lines)
    assert list(result.history.epoch) == [1]


def write_big_shard(path):
    """A shard slow enough to write that a kill lands in the middle."""
    script = (
        "import sys, numpy as np\n"
        "from mer.learn import augment, shards\n"
        "rng = np.random.default_rng(0)\n"
        "variants = [augment.variants(rng.normal(0, 1, (96, 96, 2)).astype(np.float32),\n"
        "    rng.integers(0, 255, (96, 96), dtype=np.uint8), 96) for _ in range(40)]\n"
        "shards.write_shard(sys.argv[1], 's1', [f'c{i}' for i in range(40)], [0] * 40,\n"
        f"    variants, {CLASSES!r}, {{}}, {{}})\n"
    )
    return subprocess.Popen([sys.executable, "-c", script, str(path)], env=env())


@pytest.mark.slow
def test_a_shard_killed_mid_write_never_appears_complete(tmp_path):
    final = tmp_path / "shards" / "s1.h5"
    process = write_big_shard(final)
    temp_files = lambda: [p for p in final.parent.glob(".s1.h5.tmp-*") if p.stat().st_size > 0]  # noqa: E731
    wait_for(lambda: final.parent.exists() and temp_files(), process)
    time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not final.exists(), "a killed write must leave nothing under the real name"
    (partial,) = temp_files()
    # Had something copied the partial file to the real name, the verified read refuses it.
    final.write_bytes(partial.read_bytes())
    with pytest.raises(shards.ShardError, match=r"s1\.h5.*delete it and rerun its shards job"):
        shards.read_shard(final)
    final.unlink()

    assert write_big_shard(final).wait() == 0
    data = shards.read_shard(final, augmentations={0})
    assert len(data["label"]) == 40 and np.all(data["augmentation"] == 0)
