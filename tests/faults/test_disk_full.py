"""A full disk, a quota, a read-only or vanished folder while writing each kind of artifact:
the error names the file, the cause and the fix; nothing is left under the artifact's name
(nor a temp file); the write after the fault is removed gives the artifact an undisturbed
write gives. On a real tiny tmpfs where a private mount namespace can be made (unshare -rm),
and everywhere with the errors the libraries raise on a full disk injected."""

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from fault_writers import WRITERS

from conftest import REPO
from mer.store import files

HERE = Path(__file__).parent


def _can_mount_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "mount", "-t", "tmpfs", "none", str(HERE)],
                           capture_output=True)  # fmt: skip
    return probe.returncode == 0


needs_tmpfs = pytest.mark.skipif(
    not _can_mount_tmpfs(),
    reason="no private mount namespace here (unshare -rm); the injected tests below still run",
)


def write_on_tmpfs(kind: str, tmp_path: Path, mount_options: str) -> dict:
    """fault_writers.py KIND on a tmpfs mounted with `mount_options` (then remounted large)."""
    disk, out = tmp_path / "disk", tmp_path / "out"
    disk.mkdir(), out.mkdir()
    script = 'mount -t tmpfs -o "$1" none "$2" && { [ -z "$3" ] || mount -o remount,ro "$2"; }'
    script += ' && exec "$4" "$5" "$6" "$2" "$7"'
    read_only = "ro" if "ro" in mount_options.split(",") else ""
    options = ",".join(o for o in mount_options.split(",") if o != "ro") or "size=64m"
    pythonpath = os.pathsep.join([str(REPO / "src"), str(HERE), os.environ.get("PYTHONPATH", "")])
    result = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", options, str(disk), read_only,
         sys.executable, str(HERE / "fault_writers.py"), kind, str(out)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": pythonpath},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.splitlines()[-1])
    outcome["path"] = disk / outcome["rerun"]
    outcome["copy"] = out / outcome["path"].name
    return outcome


def same_content(a: Path, b: Path) -> bool:
    """Equal by content (an npz or checkpoint archive records the time it was written)."""
    if a.suffix == ".npz":
        with np.load(a) as x, np.load(b) as y:
            return x.files == y.files and all(np.array_equal(x[k], y[k]) for k in x.files)
    if a.suffix == ".pt":
        x, y = (torch.load(p, weights_only=True) for p in (a, b))
        return (
            x.keys() == y.keys()
            and x["best_epoch"] == y["best_epoch"]
            and all(torch.equal(x["model"][k], y["model"][k]) for k in x["model"])
        )
    if a.suffix == ".h5":
        import h5py

        with h5py.File(a) as x, h5py.File(b) as y:
            arrays = all(np.array_equal(x[k][()], y[k][()]) for k in x)
            return set(x) == set(y) and arrays and dict(x.attrs) == dict(y.attrs)
    return a.read_bytes() == b.read_bytes()


@needs_tmpfs
@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_a_full_disk_names_file_cause_and_fix_leaves_nothing_and_the_rerun_matches(kind, tmp_path):
    undisturbed = WRITERS[kind](tmp_path / "undisturbed")
    outcome = write_on_tmpfs(kind, tmp_path, "size=64k")
    assert outcome["type"] == "ArtifactError" and outcome["errno"] == errno.ENOSPC
    message = outcome["error"]
    cause = f"{outcome['path']}: no space left on device (ENOSPC) while writing; "
    assert message.startswith(cause + f"free space on {outcome['path'].parent} (")
    assert message.endswith("MiB) was removed") and ", and rerun; the partial file (" in message
    assert outcome["left"] == []  # neither the artifact nor its temp file
    assert same_content(outcome["copy"], undisturbed)


@needs_tmpfs
def test_a_read_only_results_folder_is_refused_with_the_reason(tmp_path):
    outcome = write_on_tmpfs("shard", tmp_path, "size=64m,ro")
    assert outcome["errno"] == errno.EROFS
    assert outcome["error"] == (
        f"{outcome['path']}: read-only file system (EROFS) while writing; make "
        f"{tmp_path / 'disk'} writable or set `results` in config.yaml to a writable folder, "
        "and rerun; nothing was written"
    )
    assert outcome["left"] == []
    assert same_content(outcome["copy"], WRITERS["shard"](tmp_path / "undisturbed"))


# What the libraries raise on a full disk (as seen on a 64 KiB tmpfs): numpy, pandas,
# matplotlib and plain writes an OSError with errno 28; h5py an OSError with its own text;
# torch.save a RuntimeError without any errno.
FULL_DISK_ERRORS = {
    "numpy": OSError(errno.ENOSPC, "No space left on device"),
    "h5py": OSError(
        errno.ENOSPC,
        "Unable to synchronously create dataset (file write failed: "
        "errno = 28, error message = 'No space left on device')",
    ),  # fmt: skip
    "torch": RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534"),
}


@pytest.mark.parametrize("library", sorted(FULL_DISK_ERRORS))
def test_an_injected_full_disk_keeps_the_earlier_artifact_and_names_file_cause_and_fix(
    library, tmp_path, monkeypatch
):
    path = tmp_path / "shards/s32-0123abcd/s1.h5"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"the complete artifact of an earlier run")
    monkeypatch.setattr(files, "free_bytes", lambda folder: 3 * 2**10)  # the disk is full
    with pytest.raises(files.ArtifactError) as raised:
        with files.atomic_path(path) as tmp:
            Path(tmp).write_bytes(b"x" * 2**19)
            raise FULL_DISK_ERRORS[library]
    assert raised.value.errno == errno.ENOSPC
    assert str(raised.value) == (
        f"{path}: no space left on device (ENOSPC) while writing; free space on {path.parent} "
        "(0.0 MiB free), and rerun; the partial file (0.5 MiB) was removed"
    )
    assert path.read_bytes() == b"the complete artifact of an earlier run"
    assert sorted(p.name for p in path.parent.iterdir()) == ["s1.h5"]


def test_a_results_folder_that_vanishes_while_writing_is_named(tmp_path):
    path = tmp_path / "results/synthetic/train/k/seed0/s1/checkpoint.pt"
    with pytest.raises(files.ArtifactError) as raised:
        with files.atomic_path(path) as tmp:
            shutil.rmtree(tmp_path / "results")
            Path(tmp).write_bytes(b"weights")
    assert raised.value.errno == errno.ENOENT
    assert str(raised.value) == (
        f"{path}: its folder vanished (ENOENT) while writing; check that {tmp_path} still "
        "exists (a removed or unmounted results folder), and rerun; the partial file "
        "(0.0 MiB) was removed"
    )


def test_a_quota_and_an_unwritable_folder_are_named(tmp_path, monkeypatch):
    path = tmp_path / "evm/k/s1.npz"
    with pytest.raises(files.ArtifactError, match=r"s1\.npz: disk quota exceeded \(EDQUOT\)"):
        with files.atomic_path(path):
            raise OSError(errno.EDQUOT, "Disk quota exceeded")

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(files.ArtifactError) as raised:
        files.save_npz(path, flow_uv=np.zeros(3))
    assert str(raised.value).startswith(f"{path}: permission denied (EACCES) while writing; make ")
    assert str(raised.value).endswith("writable for this user, and rerun; nothing was written")


def test_other_failures_inside_a_write_pass_unchanged(tmp_path):
    path = tmp_path / "flow/k/s1.npz"
    with pytest.raises(ValueError, match="^a bug, not the disk$"):
        with files.atomic_path(path):
            raise ValueError("a bug, not the disk")
    with pytest.raises(FileNotFoundError):  # a missing input is not a vanished folder
        with files.atomic_path(path):
            open(tmp_path / "absent.npz", "rb")
    with pytest.raises(RuntimeError, match="^CUDA error$"):  # plenty of space: not ENOSPC
        with files.atomic_path(path):
            raise RuntimeError("CUDA error")
    assert not path.parent.exists() or not any(path.parent.iterdir())


def test_a_shard_job_warns_when_its_disk_has_less_space_than_it_writes(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(files, "free_bytes", lambda folder: 2**17)
    path = WRITERS["shard"](tmp_path)
    warning = capsys.readouterr().err
    assert warning.startswith(f"mer shards: warning: {path} needs about 0.3 MiB but its ")
    assert warning.rstrip().endswith(
        "has 0.1 MiB free; free space now, or the write will fail (ENOSPC)"
    )
    assert path.exists()  # a warning: the write is still tried
