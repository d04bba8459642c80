"""A cached artifact damaged outside mer (zero bytes, truncated by a crash, a flipped bit) is
detected when read, named, and given the command that redoes it; `mer check-results` lists
every such artifact of a results folder; a damaged resume file is never trusted."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fault_writers import WRITERS

from conftest import REPO
from mer.learn import resume, shards
from mer.store import files


def zero(path: Path) -> None:
    path.write_bytes(b"")


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_a_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


DAMAGES = {"zero_bytes": zero, "truncated": truncate, "bit_flip": flip_a_bit}
ARRAYS = {  # what the next stage reads of each
    "evm": ("onset_magnified", "apex_magnified"),
    "flow": ("flow_uv",),
    "masks": ("apex_gray",),
}


def with_manifest(npz: Path) -> Path:
    """The per-subject job's declared output listing the sample, as the preprocess jobs write."""
    manifest = npz.parent / "subjects/s1.tsv"
    files.write_manifest(manifest, ["s1_c1", npz.stem], ["-", "-"])
    return manifest


@pytest.mark.parametrize("damage", sorted(DAMAGES))
@pytest.mark.parametrize("kind", ["evm", "flow", "masks"])
def test_a_damaged_npz_names_the_file_and_forces_its_subject_job(kind, damage, tmp_path):
    path = WRITERS[kind](tmp_path / "results/synthetic")
    manifest = with_manifest(path)
    DAMAGES[damage](path)
    with pytest.raises(files.ArtifactError) as raised:
        files.load_npz(path, *ARRAYS[kind])
    message = str(raised.value)
    assert message.startswith(f"{path} is unreadable or incomplete (")
    assert message.endswith(
        f"rerun the job that makes it: snakemake --cores all --forcerun {manifest} "
        f"(the job's declared output is {manifest})"
    )


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_shard_names_the_file_and_forces_its_job(damage, tmp_path):
    path = WRITERS["shard"](tmp_path)
    DAMAGES[damage](path)
    with pytest.raises(shards.ShardError) as raised:
        shards.read_shard(path)
    assert str(raised.value).startswith(f"shard {path} cannot be read (")
    assert str(raised.value).endswith(
        f"delete it and rerun its shards job (snakemake --cores all --forcerun {path})."
    )


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_checkpoint_names_the_file_and_forces_its_fold(damage, tmp_path):
    path = WRITERS["checkpoint"](tmp_path)
    DAMAGES[damage](path)  # torch.load alone would load a flipped bit without a word
    with pytest.raises(files.ArtifactError) as raised:
        files.load_checkpoint(path)
    assert str(raised.value).startswith(f"{path} is unreadable or incomplete (")
    assert str(raised.value).endswith(f"snakemake --cores all --forcerun {path}")


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_resume_file_is_never_trusted(damage, tmp_path):
    path = WRITERS["resume"](tmp_path)
    DAMAGES[damage](path)
    notes = []
    assert resume.load_resume(path, fingerprint=None, log=notes.append) is None
    assert notes[0].startswith(f"note: ignoring unreadable epoch checkpoint {path} (")


def test_a_shard_of_another_format_is_refused_with_the_reason(tmp_path):
    import h5py

    path = WRITERS["shard"](tmp_path)
    with h5py.File(path, "a") as shard:
        shard.attrs.update(format=shards.FORMAT + 1, mer_version="9.9.0")
    with pytest.raises(shards.ShardError) as raised:
        shards.read_shard(path)
    assert str(raised.value) == (
        f"shard {path} has format {shards.FORMAT + 1} (written by mer 9.9.0); mer "
        f"{__import__('mer').__version__} reads format {shards.FORMAT}: results of another mer "
        f"version are not read. Rerun its shards job (snakemake --cores all --forcerun {path}), "
        "or use the mer version that wrote it."
    )


def check_results(folder: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    return subprocess.run([sys.executable, "-m", "mer", "check-results", str(folder)],
                          capture_output=True, text=True, env=env)  # fmt: skip


def test_check_results_lists_every_unreadable_artifact_with_its_fix(tmp_path):
    results = tmp_path / "results/synthetic"
    paths = {kind: writer(results) for kind, writer in WRITERS.items()}
    (results / "train/mscnn-0123abcd/seed0/s1/fold.json").write_text(json.dumps({"ok": 1}))
    clean = check_results(results)
    assert (
        clean.returncode == 0
        and clean.stdout == "checked 7 artifact(s): 0 unreadable or left over\n"
    )

    manifest = with_manifest(paths["flow"])
    truncate(paths["flow"])
    flip_a_bit(paths["checkpoint"])
    zero(paths["shard"])
    leftover = paths["evm"].with_name(".s1_c0.npz.tmp-4242.npz")
    leftover.write_bytes(b"partial")
    found = check_results(results)
    assert found.returncode == 1
    listed = found.stdout.splitlines()
    assert listed[-1] == "checked 7 artifact(s): 4 unreadable or left over"
    named = {
        line.split(": ", 1)[0]: fix for line, fix in zip(listed[:-1:2], listed[1::2], strict=True)
    }
    assert named == {
        str(leftover): "  fix: delete it",
        str(paths["flow"]): f"  fix: rerun the job that makes it: snakemake --cores all "
        f"--forcerun {manifest} (the job's declared output is {manifest})",
        str(paths["shard"]): f"  fix: rerun the job that makes it: snakemake --cores all "
        f"--forcerun {paths['shard']}",
        str(paths["checkpoint"]): f"  fix: rerun the job that makes it: snakemake --cores all "
        f"--forcerun {paths['checkpoint']}",
    }
    assert f"{paths['shard']}: empty (0 bytes)" in listed
    assert any(line.startswith(f"{paths['checkpoint']}: BadZipFile: bad CRC-32") for line in listed)


def test_check_results_refuses_a_vanished_folder(tmp_path):
    gone = check_results(tmp_path / "results/never")
    assert gone.returncode == 2
    assert gone.stderr.strip() == (
        f"mer check-results: error: {tmp_path / 'results/never'} is no folder (vanished, or "
        "never written?)"
    )
