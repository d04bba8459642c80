"""Small file helpers shared by the stages: atomic writes and parameter-keyed names."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np


class ArtifactError(OSError, ValueError):
    """An artifact that cannot be written or read; the message names the file, the cause and
    the fix. A ValueError too, so `mer` prints the message instead of a traceback."""


# What a failed write's errno means, and what to do about it ({folder}: where it was writing).
WRITE_FAULTS = {
    errno.ENOSPC: ("no space left on device (ENOSPC)", "free space on {folder} ({free} free)"),
    errno.EDQUOT: ("disk quota exceeded (EDQUOT)", "free space in your quota on {folder}"),
    errno.EROFS: (
        "read-only file system (EROFS)",
        "make {folder} writable or set `results` in config.yaml to a writable folder",
    ),
    errno.EACCES: ("permission denied (EACCES)", "make {folder} writable for this user"),
    errno.ENOENT: (
        "its folder vanished (ENOENT)",
        "check that {folder} still exists (a removed or unmounted results folder)",
    ),
    errno.EIO: ("input/output error (EIO)", "check the disk or network filesystem of {folder}"),
}
NEARLY_FULL_BYTES = 1 << 20  # a writer that fails without an errno (torch.save) on a full disk


def free_bytes(folder: str | Path) -> int:
    """Free space of the filesystem holding `folder` (or its nearest existing parent)."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def _mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.1f} MiB"


def _fault_errno(error: BaseException, folder: Path) -> int | None:
    """The errno behind a failed write: the error's own, h5py's in its text, or ENOSPC when
    a writer that reports none (torch.save: "unexpected pos", "iostream error") filled the disk."""
    if isinstance(error, OSError) and error.errno in WRITE_FAULTS:
        input_missing = error.errno == errno.ENOENT and folder.exists()
        return None if input_missing else error.errno  # a missing input is no write fault
    if "No space left on device" in str(error):
        return errno.ENOSPC
    if isinstance(error, OSError | RuntimeError) and free_bytes(folder) < NEARLY_FULL_BYTES:
        return errno.ENOSPC
    return None


def write_error(path: Path, error: BaseException, partial_bytes: int | None) -> ArtifactError:
    """The message of a failed write: the file, the cause, the fix, what was cleaned up."""
    code = _fault_errno(error, path.parent)
    cause, fix = WRITE_FAULTS[code]
    folder = next((p for p in (path.parent, *path.parents) if p.exists()), path.parent)
    fix = fix.format(folder=folder, free=_mib(free_bytes(folder)))
    removed = (
        "; nothing was written"
        if partial_bytes is None
        else f"; the partial file ({_mib(partial_bytes)}) was removed"
    )
    message = ArtifactError(f"{path}: {cause} while writing; {fix}, and rerun{removed}")
    message.errno = code
    return message


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary sibling of `path`; rename it onto `path` only if the block succeeds.

    A crash or kill leaves at most a hidden temp file, never a truncated artifact under the
    real name (Snakemake and readers take an existing file as complete). A write that fails
    for want of space, permission or its folder raises ArtifactError saying so.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        if _fault_errno(error, path.parent) is None:
            raise
        raise write_error(path, error, None) from error
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except (OSError, RuntimeError) as error:
        other_file = getattr(error, "filename", None) not in (None, str(tmp), str(path))
        if (
            isinstance(error, ArtifactError)
            or other_file
            or _fault_errno(error, path.parent) is None
        ):
            raise
        partial = tmp.stat().st_size if tmp.exists() else 0
        tmp.unlink(missing_ok=True)
        raise write_error(path, error, partial) from error
    finally:
        if tmp.exists():
            tmp.unlink()


def low_space_warning(path: str | Path, needed_bytes: int) -> str | None:
    """A warning when the filesystem of `path` has less free space than a job will write."""
    free = free_bytes(Path(path).parent)
    if free >= needed_bytes:
        return None
    return (
        f"warning: {path} needs about {_mib(needed_bytes)} but its filesystem has "
        f"{_mib(free)} free; free space now, or the write will fail (ENOSPC)"
    )


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def write_manifest(path: str | Path, samples: list[str], summaries: list[str]) -> None:
    """A per-subject job's declared output, written last: the samples whose artifacts it
    wrote. Its absence marks the job incomplete, so an interrupted subject is redone whole."""
    rows = zip(samples, summaries, strict=True)
    lines = ["sample\tsummary", *(f"{sample}\t{summary}" for sample, summary in rows)]
    write_text_atomic(path, "\n".join(lines) + "\n")


def param_key(tag: str, params: dict, upstream: str = "") -> str:
    """Readable tag + short hash of a stage's full parameters, chained from the upstream key.

    Artifacts live under this key, so changing a parameter creates new paths only from its
    stage downwards, and switching back finds the earlier artifacts.
    """
    blob = json.dumps({"upstream": upstream, "params": params}, sort_keys=True, default=str)
    return f"{tag}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


def save_npz(path: str | Path, compress: bool = True, **arrays) -> None:
    """np.savez_compressed (or np.savez, compress=False), atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            (np.savez_compressed if compress else np.savez)(handle, **arrays)


def job_output(path: str | Path) -> Path:
    """The declared output that vouches for an artifact: a per-sample file's subject manifest
    (<stage>/<key>/subjects/<subject>.tsv listing it), else the file itself."""
    path = Path(path)
    for manifest in sorted((path.parent / "subjects").glob("*.tsv")):
        listed = (line.split("\t", 1)[0] for line in manifest.read_text().splitlines()[1:])
        if path.stem in listed:
            return manifest
    return path


def remedy(path: str | Path) -> str:
    """How to redo a damaged artifact: force its job to run again."""
    output = job_output(path)
    also = "" if output == Path(path) else f" (the job's declared output is {output})"
    return f"rerun the job that makes it: snakemake --cores all --forcerun {output}{also}"


def unreadable(path: str | Path, error: BaseException) -> ArtifactError:
    return ArtifactError(
        f"{path} is unreadable or incomplete ({type(error).__name__}: {error}): damaged by a "
        f"crash, a full disk or a bad copy outside mer, or of another format; {remedy(path)}"
    )


def load_npz(path: str | Path, *keys: str) -> dict:
    """The named arrays of an .npz artifact; ArtifactError naming the file if it is damaged
    (zipfile checks each array's CRC-32, so a flipped bit is caught too)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in keys}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise unreadable(path, error) from error


def load_checkpoint(path: str | Path, map_location=None) -> dict:
    """A torch checkpoint, weights only; ArtifactError naming the file if it is damaged.
    torch.load checks no CRC (a flipped bit would load), so the archive is tested first."""
    import torch

    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
        if damaged:
            raise zipfile.BadZipFile(f"bad CRC-32 for {damaged}")
        return torch.load(path, map_location=map_location, weights_only=True)
    except (OSError, RuntimeError, EOFError, zipfile.BadZipFile) as error:
        raise unreadable(path, error) from error
