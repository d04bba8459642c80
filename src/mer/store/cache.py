"""Cached artifacts of parameter sets no longer in the config: find them, and remove them.

Every keyed artifact lives under results/<name>/<stage>/<key>/ (key = tag-<8 hex>, see
mer.store.files.param_key), and its logs under results/<name>/logs/<rule>/<key>[.log or /]. The
workflow passes the keys its current config produces (all experiments, sweeps and the
ablation); any other key folder is stale. Names that are not keys are never touched.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

KEY = re.compile(r".+-[0-9a-f]{8}")
STAGES = ("dataset", "evm", "flow", "masks", "shards", "train", "features", "baseline",
          "elrcn_inputs", "elrcn", "evaluation")  # fmt: skip


def size_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(
        (Path(folder) / name).lstat().st_size
        for folder, _, names in os.walk(path)
        for name in names
    )


def stale_entries(data_dir: str | Path, current: dict[str, list[str]]) -> list[Path]:
    """Key folders under data_dir/<stage>/ (stages named in `current`) whose key is not
    current, then log folders/files under data_dir/logs/ whose key is no current key of any
    stage. A stage missing from `current` is left alone (e.g. no synthetic dataset/)."""
    data_dir = Path(data_dir)
    unknown = set(current) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stage(s) {sorted(unknown)}; expected some of {STAGES}")
    stale = []
    for stage, keys in current.items():
        folder = data_dir / stage
        if folder.is_dir():
            stale += [
                p for p in sorted(folder.iterdir()) if KEY.fullmatch(p.name) and p.name not in keys
            ]
    every_key = {key for keys in current.values() for key in keys}
    logs = data_dir / "logs"
    if logs.is_dir():
        for rule_folder in sorted(p for p in logs.iterdir() if p.is_dir()):
            for entry in sorted(rule_folder.iterdir()):
                name = entry.name.removesuffix(".log")
                if KEY.fullmatch(name) and name not in every_key:
                    stale.append(entry)
    return stale


def remove(entries: list[Path]) -> None:
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def describe(entries: list[Path], sizes: list[int], deleted: bool) -> str:
    lines = [f"{size / 1e6:10.1f} MB  {entry}" for entry, size in zip(entries, sizes, strict=True)]
    verb = "removed" if deleted else "would remove (dry run; use the clean_cache_delete target)"
    lines.append(f"{verb}: {len(entries)} stale folder(s)/log(s), {sum(sizes) / 1e6:.1f} MB")
    return "\n".join(lines)
