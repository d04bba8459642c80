"""Small file helpers shared by the stages: atomic writes and parameter-keyed names."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary sibling of `path`; rename it onto `path` only if the block succeeds.

    A crash or kill leaves at most a hidden temp file, never a truncated artifact under the
    real name (Snakemake and readers take an existing file as complete).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


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


def load_npz(path: str | Path, *keys: str) -> dict:
    """The named arrays of an .npz artifact; a clear error naming the file if it is damaged."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in keys}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        # A per-subject job's declared output is its manifest, not the per-sample files:
        # Snakemake redoes the job only once the manifest is gone too.
        raise ValueError(
            f"{path} is unreadable or incomplete ({error}); delete it (and the manifest "
            "subjects/<subject>.tsv beside it, if any) and rerun the job that makes it."
        ) from error
