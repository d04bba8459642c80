"""Every unreadable artifact of a results folder, and how to redo it (`mer check-results`).

Each .npz, .h5, .pt and .json file is read whole: an empty or truncated file, a flipped bit
(the CRC-32 of npz and checkpoint archives, the checksums of compressed HDF5 chunks), or a
file that is not what its name says is listed with its cause and the command that redoes it.
Temp files of interrupted writes (.<name>.tmp-<pid>...) are listed too; no reader trusts them.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from mer.store import files

READ = (".npz", ".h5", ".pt", ".json")
TEMP = re.compile(r"\..+\.tmp-\d+(\..*)?")


def _read_whole(path: Path) -> None:
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            for key in archive.files:
                archive[key]
    elif path.suffix == ".pt":
        files.load_checkpoint(path, map_location="cpu")
    elif path.suffix == ".h5":
        import h5py

        with h5py.File(path, "r") as shard:
            shard.visititems(lambda _, item: item[()] if isinstance(item, h5py.Dataset) else None)
    else:
        json.loads(path.read_text())


def problem(path: str | Path) -> str | None:
    """Why an artifact cannot be read whole (None: it can)."""
    path = Path(path)
    if path.stat().st_size == 0:
        return "empty (0 bytes)"
    try:
        _read_whole(path)
    except Exception as error:  # any reader's failure is the finding
        cause = error.__cause__ if isinstance(error, files.ArtifactError) else error
        return f"{type(cause).__name__}: {cause}"
    return None


def fix(path: Path) -> str:
    if path.name == "resume.pt":
        return "delete it (training ignores it and starts the fold over)"
    return files.remedy(path)


def findings(results_dir: str | Path) -> tuple[int, list[tuple[Path, str, str]]]:
    """(artifacts read, [(path, cause, fix)]) for every artifact and temp file under the folder."""
    found, n_read = [], 0
    for folder, _, names in sorted(os.walk(results_dir)):
        for name in sorted(names):
            path = Path(folder, name)
            if TEMP.fullmatch(name):
                cause = "temp file of an interrupted write (never read)"
                found.append((path, cause, "delete it"))
            elif path.suffix in READ:
                n_read += 1
                if cause := problem(path):
                    found.append((path, cause, fix(path)))
    return n_read, found


def describe(n_read: int, found: list[tuple[Path, str, str]]) -> str:
    lines = [f"{path}: {cause}\n  fix: {fix_text}" for path, cause, fix_text in found]
    lines.append(f"checked {n_read} artifact(s): {len(found)} unreadable or left over")
    return "\n".join(lines)
