"""One HDF5 shard per subject (all 10 augmentations of its samples) and the reader training uses.

Layout of a shard (rows ordered augmentation-major, so the un-augmented originals that
evaluation reads are one contiguous block):
    flow_uv (N, S, S, 2) float32   flow_image (N, S, S, 3) uint8 BGR   mask (N, S, S) bool
    apex_gray (N, S, S) uint8      masked_apex (N, S, S) uint8
    label (N,) int16   sample (N,) str   subject (N,) str   augmentation (N,) int8
attrs: format (FORMAT; absent = 1), subject, classes (JSON), params (JSON: every upstream
parameter), mer_version,
opencv_version (flow and resizing depend on it),
inputs (JSON: sha256 of each input file), augmentations (JSON: id -> [flip, angle]), rows.
Chunks hold up to 64 rows (a training batch) of one array, compressed with gzip level 1
(fast to decode; the reader, mer.learn.reader, loads a shard whole).
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
from contextlib import contextmanager
from pathlib import Path

import cv2
import h5py
import numpy as np

from mer import __version__
from mer.learn.augment import AUGMENTATIONS

IMAGE_ARRAYS = ("flow_uv", "flow_image", "mask", "apex_gray", "masked_apex")
ROW_ARRAYS = ("label", "sample", "subject", "augmentation")
CHUNK_ROWS = 64
# The layout above; raise it when the layout changes, so older shards are refused, not misread.
FORMAT = 1


class ShardError(ValueError):
    """A shard that cannot be used; the message names the file and the fix."""


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_shard(
    path: str | Path,
    subject: str,
    samples: list[str],
    labels: list[int],
    sample_variants: list[list[dict]],
    classes: list[str],
    params: dict,
    inputs: dict[str, str],
) -> None:
    """Write one subject's shard atomically (temporary name, then rename)."""
    from mer.store.files import atomic_path, low_space_warning

    n_aug = len(AUGMENTATIONS)
    if any(len(v) != n_aug for v in sample_variants):
        raise ValueError(f"every sample needs {n_aug} variants")
    # Augmentation-major order: rows [a * n : (a + 1) * n] hold augmentation a of all samples.
    rows = [(aug, i) for aug in range(n_aug) for i in range(len(samples))]
    uncompressed = sum(
        v[name].nbytes for vs in sample_variants for v in vs for name in IMAGE_ARRAYS
    )
    warning = low_space_warning(path, uncompressed)
    if warning:
        print(f"mer shards: {warning}", file=sys.stderr, flush=True)
    # HDF5 crashes (SIGSEGV) when the disk fills under it: where it might, the shard is built
    # in memory and written by Python, which fails with ENOSPC and a message.
    buffer = io.BytesIO() if warning else None
    with atomic_path(path) as tmp:
        with h5py.File(tmp if buffer is None else buffer, "w") as shard:
            for name in IMAGE_ARRAYS:
                stacked = np.stack([sample_variants[i][aug][name] for aug, i in rows])
                shard.create_dataset(
                    name,
                    data=stacked,
                    compression="gzip",
                    compression_opts=1,
                    chunks=(min(CHUNK_ROWS, len(rows)),) + stacked.shape[1:],
                )
            shard["label"] = np.array([labels[i] for _, i in rows], np.int16)
            shard["sample"] = np.array([samples[i] for _, i in rows], dtype=h5py.string_dtype())
            shard["subject"] = np.array([subject] * len(rows), dtype=h5py.string_dtype())
            shard["augmentation"] = np.array([aug for aug, _ in rows], np.int8)
            shard.attrs.update(
                format=FORMAT,
                subject=subject,
                classes=json.dumps(classes),
                rows=len(rows),
                params=json.dumps(params, sort_keys=True, default=str),
                mer_version=__version__,
                opencv_version=cv2.__version__,
                inputs=json.dumps(inputs, sort_keys=True),
                augmentations=json.dumps({i: list(a) for i, a in enumerate(AUGMENTATIONS)}),
            )
        if buffer is not None:
            Path(tmp).write_bytes(buffer.getbuffer())


@contextmanager
def open_shard(path: str | Path):
    """A shard open for reading; a truncated or non-HDF5 file (or a flipped bit in its
    compressed arrays), or a shard of another format, raises ShardError naming it."""
    try:
        with h5py.File(path, "r") as shard:
            _check_format(path, shard.attrs)
            yield shard
    except (OSError, KeyError) as error:  # h5py's way of saying truncated or not HDF5
        raise ShardError(
            f"shard {path} cannot be read ({error}); it is damaged or incomplete: delete it "
            f"and rerun its shards job (snakemake --cores all --forcerun {path})."
        ) from error


def _check_format(path, attrs) -> None:
    found = int(attrs.get("format", 1))
    if found != FORMAT:
        raise ShardError(
            f"shard {path} has format {found} (written by mer {attrs.get('mer_version', '?')}); "
            f"mer {__version__} reads format {FORMAT}: results of another mer version are "
            f"not read. Rerun its shards job (snakemake --cores all --forcerun {path}), or "
            "use the mer version that wrote it."
        )


def read_shard(path: str | Path, augmentations: set[int] | None = None) -> dict:
    """All arrays and attributes of a shard, verified; rows restricted to `augmentations`."""
    with open_shard(path) as shard:
        missing = [n for n in IMAGE_ARRAYS + ROW_ARRAYS if n not in shard]
        if missing or "rows" not in shard.attrs:
            raise ShardError(
                f"shard {path} lacks {missing or 'its row count'}; it is "
                "incomplete: delete it and rerun its shards job."
            )
        rows = int(shard.attrs["rows"])
        lengths = {n: len(shard[n]) for n in IMAGE_ARRAYS + ROW_ARRAYS}
        if set(lengths.values()) != {rows}:
            raise ShardError(
                f"shard {path} holds arrays of lengths {lengths}, expected "
                f"{rows}: delete it and rerun its shards job."
            )
        augmentation = shard["augmentation"][:]
        keep = (
            np.ones(rows, bool)
            if augmentations is None
            else np.isin(augmentation, sorted(augmentations))
        )
        data = {n: shard[n][:][keep] for n in IMAGE_ARRAYS + ("label", "augmentation")}
        data["sample"] = shard["sample"].asstr()[:][keep]
        data["subject"] = shard["subject"].asstr()[:][keep]
        data["attrs"] = dict(shard.attrs)
    return data
