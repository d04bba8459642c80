"""What computed a result, and whether two results folders computed the same bits.

Each torch fold records its compute fingerprint in fold.json (mer.compute); an
experiment's metrics.json lists the distinct fingerprints of its folds, summary.md states them
and which fields two folders must share to agree bit for bit, and `mer compare-results` pairs
two folders' folds and says which differ.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from mer import compute

# Per-fold files whose content is the result (the seconds column of history.csv is not).
RESULT_FILES = ("predictions.csv", "history.csv")
KEY_HASH = re.compile(r"-[0-9a-f]{8}$")  # mer.store.files.param_key's suffix
NO_TORCH = "not recorded: these folds do not compute with torch (numpy and scikit-learn)"


def fold_fingerprints(fold_dirs: list[Path]) -> list[dict]:
    """The distinct compute fingerprints of these folds' fold.json, each with its fold count."""
    found: list[dict] = []
    for fold_dir in fold_dirs:
        record = None
        path = Path(fold_dir) / "fold.json"
        if path.is_file():
            try:
                record = json.loads(path.read_text()).get("compute")
            except (OSError, json.JSONDecodeError) as error:
                raise ValueError(f"{path} is unreadable ({error}); rerun its fold") from error
        for entry in found:
            if entry["fingerprint"] == record:
                entry["folds"] += 1
                break
        else:
            found.append({"fingerprint": record, "folds": 1})
    return found


def compute_lines(metrics_by_experiment: dict[str, dict]) -> list[str]:
    """summary.md's section on how the numbers were computed."""
    lines = ["", "## How these numbers were computed", ""]
    fields = set()
    for experiment, metrics in metrics_by_experiment.items():
        for entry in metrics.get("compute", []):
            record = entry["fingerprint"]
            text = NO_TORCH if record is None else compute.described(record)
            lines.append(f"- {experiment} ({entry['folds']} folds): {text}")
            if record is not None:
                fields |= set(compute.comparable_fields(record))
    if fields:
        lines += [
            "",
            "Another results folder of the same configuration has the same predictions bit for "
            "bit when its folds share these fingerprint fields: "
            + ", ".join(sorted(fields))
            + ". In portable mode that is any x86-64 CPU with AVX2, whatever its model and "
            "threads; fast mode and CUDA results agree only on the same machine and software. "
            "`mer compare-results A B` checks two folders fold by fold.",
        ]
    return lines


def _fold_files(root: Path) -> dict[str, Path]:
    """Every fold's result files under a results folder, by path relative to it with the
    parameter hashes left out (`train/mscnn/seed0/s01/...`): runs of other settings or compute
    modes pair by experiment, seed and subject, and their fingerprints say what differs."""
    return {
        "/".join(KEY_HASH.sub("", part) for part in path.relative_to(root).parts): path
        for name in RESULT_FILES
        for path in sorted(root.rglob(name))
    }


def _result_text(path: Path) -> str:
    """A result file's content; history.csv without its wall-clock seconds column."""
    text = path.read_text()
    if path.name != "history.csv":
        return text
    rows = [line.split(",") for line in text.splitlines()]
    if not rows or "seconds" not in rows[0]:
        return text
    drop = rows[0].index("seconds")
    return "\n".join(",".join(v for i, v in enumerate(r) if i != drop) for r in rows)


def _fingerprint_of(path: Path) -> dict | None:
    fold = path.parent / "fold.json"
    if not fold.is_file():
        return None
    return json.loads(fold.read_text()).get("compute")


def compare_results(first: str | Path, second: str | Path) -> dict:
    """Pair the two folders' fold result files by relative path and compare their content,
    and the comparable fields of their folds' fingerprints."""
    first, second = Path(first), Path(second)
    for root in (first, second):
        if not root.is_dir():
            raise ValueError(f"{root} is not a results folder")
    files_a, files_b = _fold_files(first), _fold_files(second)
    common = sorted(set(files_a) & set(files_b))
    differing = [p for p in common if _result_text(files_a[p]) != _result_text(files_b[p])]
    fingerprint_fields = {}
    for relative in common:
        fa, fb = _fingerprint_of(files_a[relative]), _fingerprint_of(files_b[relative])
        if fa is None or fb is None:
            continue
        deciding = set(compute.comparable_fields(fa)) | set(compute.comparable_fields(fb))
        for name in sorted(deciding):
            if fa.get(name) != fb.get(name):
                fingerprint_fields[name] = (fa.get(name), fb.get(name))
    return {
        "compared": len(common),
        "identical": len(common) - len(differing),
        "differing": differing,
        "only_first": sorted(set(files_a) - set(files_b)),
        "only_second": sorted(set(files_b) - set(files_a)),
        "fingerprint_differs": fingerprint_fields,
    }


def comparison_lines(report: dict, first, second) -> list[str]:
    lines = [
        f"{first} vs {second}: {report['compared']} fold files in both, "
        f"{report['identical']} identical, {len(report['differing'])} differ"
    ]
    lines += [f"  differs: {path}" for path in report["differing"]]
    for side, name in (("only_first", first), ("only_second", second)):
        if report[side]:
            lines.append(f"  {len(report[side])} only in {name}, e.g. {report[side][0]}")
    for field, (a, b) in report["fingerprint_differs"].items():
        lines.append(f"  fingerprint {field}: {a} vs {b}")
    if not report["fingerprint_differs"] and report["compared"]:
        lines.append("  fingerprints: the fields that decide the bits agree")
    return lines
