"""Stage 1: a dataset's annotations and frame folders -> the canonical samples table.

Every loader ends here: `build_samples` checks each annotated clip against its frames on disk
and the configured classes, keeps the usable rows and lists every skipped row with its reason.
Frame files are found by the integer in their names (img46.jpg, reg_img46.jpg, 006_05562.jpg),
never by formatting names, because real datasets pad inconsistently.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

SAMPLE_COLUMNS = [
    "sample",
    "dataset",
    "subject",
    "video",
    "label",
    "onset",
    "apex",
    "offset",
    "fps",
    "frames_dir",
    "first_frame",
    "last_frame",
]
FRAME_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
_LAST_INTEGER = re.compile(r"(\d+)(?!.*\d)")


class DataError(ValueError):
    """A dataset problem that stops the run; the message names the file and the fix."""


@dataclass
class LoadResult:
    samples: pd.DataFrame
    skipped: list[dict] = field(default_factory=list)  # {sample, reason}
    notes: list[str] = field(default_factory=list)  # fixes applied, facts worth knowing


def frame_number(path: str | Path) -> int | None:
    """The last integer in a frame file's name, or None when it has none."""
    match = _LAST_INTEGER.search(Path(path).stem)
    return int(match.group(1)) if match else None


def list_frames(clip_dir: str | Path) -> dict[int, Path]:
    """Frame number -> file for every image in clip_dir (sorted numerically, not by name)."""
    frames: dict[int, Path] = {}
    for entry in os.scandir(clip_dir):
        path = Path(entry.path)
        if path.suffix.lower() not in FRAME_SUFFIXES:
            continue
        number = frame_number(path)
        if number is None:
            continue
        if number in frames:
            raise DataError(
                f"{clip_dir}: frames {frames[number].name} and {path.name} both carry number "
                f"{number}; remove the duplicate so that each frame number names one image."
            )
        frames[number] = path
    return dict(sorted(frames.items()))


def normalise_label(raw, classes: list[str]) -> str | None:
    """Match a label to the configured classes, ignoring case, spaces and a plural 's'."""

    def key(text: str) -> str:
        text = str(text).strip().lower()
        return text[:-1] if text.endswith("s") else text

    wanted = key(raw)
    for name in classes:
        if key(name) == wanted:
            return name
    return None


def safe_clip_dir(root: Path, *parts: str) -> Path | None:
    """root/part/... if it stays inside root; None for names such as '../x' or absolute paths."""
    parts = [str(p) for p in parts]
    resolved = root.resolve().joinpath(*parts).resolve()
    inside = resolved.is_relative_to(root.resolve()) and resolved != root.resolve()
    # Return the unresolved form so that a relative root keeps samples.tsv relocatable.
    return root.joinpath(*parts) if inside else None


def build_samples(
    rows: pd.DataFrame,
    root: str | Path,
    classes: list[str],
    dataset: str,
    clip_dir_of=None,
    skipped: list[dict] | None = None,
) -> LoadResult:
    """Validate annotation rows (subject, video, onset, apex, offset, label, fps) against disk.

    `clip_dir_of(row)` gives a row's frame folder relative to root (default: subject/video).
    Rows that cannot be used are skipped with a reason, never dropped silently.
    """
    root = Path(root)
    clip_dir_of = clip_dir_of or (lambda row: (str(row["subject"]), str(row["video"])))
    skipped = list(skipped or [])
    kept = []
    for _, row in rows.iterrows():
        sample = f"{row['subject']}_{row['video']}"

        def skip(reason: str, sample=sample) -> None:
            skipped.append({"sample": sample, "reason": reason})

        label = normalise_label(row["label"], classes)
        if label is None:
            skip(f"label {row['label']!r} is not one of the configured classes {classes}")
            continue
        try:
            onset, apex, offset = (int(row[k]) for k in ("onset", "apex", "offset"))
        except (TypeError, ValueError):
            skip(
                f"onset/apex/offset {row['onset']!r}/{row['apex']!r}/{row['offset']!r} "
                "are not all frame numbers"
            )
            continue
        if not onset <= apex <= offset:
            skip(f"apex {apex} is not within onset {onset} .. offset {offset}")
            continue
        clip_dir = safe_clip_dir(root, *clip_dir_of(row))
        if clip_dir is None:
            skip(f"clip folder {'/'.join(clip_dir_of(row))!r} would leave the data root {root}")
            continue
        if not clip_dir.is_dir():
            skip(f"frame folder {clip_dir} does not exist")
            continue
        try:
            frames = list_frames(clip_dir)
        except DataError as error:
            skip(str(error))
            continue
        missing = [n for n in range(onset, offset + 1) if n not in frames]
        if missing:
            shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
            skip(f"{len(missing)} frame(s) between onset and offset missing in {clip_dir}: {shown}")
            continue
        kept.append(
            {
                "sample": sample,
                "dataset": dataset,
                "subject": str(row["subject"]),
                "video": str(row["video"]),
                "label": label,
                "onset": onset,
                "apex": apex,
                "offset": offset,
                "fps": float(row["fps"]),
                "frames_dir": str(clip_dir),
                "first_frame": min(frames),
                "last_frame": max(frames),
            }
        )
    samples = pd.DataFrame(kept, columns=SAMPLE_COLUMNS)
    duplicated = samples["sample"].duplicated(keep=False)
    if duplicated.any():
        raise DataError(
            f"sample ids are not unique: {sorted(set(samples['sample'][duplicated]))}; "
            "each subject/video pair must appear once in the annotations."
        )
    return LoadResult(samples=samples, skipped=skipped)


def load_table(
    annotations: str | Path,
    root: str | Path,
    classes: list[str],
    dataset: str,
    fps: float | None = None,
) -> LoadResult:
    """Generic loader: a CSV/TSV with subject, video, onset, apex, offset, label (and fps)."""
    annotations = Path(annotations)
    if not annotations.is_file():
        raise DataError(f"annotation table {annotations} does not exist; set dataset.annotations.")
    sep = "\t" if annotations.suffix.lower() in (".tsv", ".tab") else ","
    rows = pd.read_csv(annotations, sep=sep, dtype=str, keep_default_na=False)
    rows.columns = [c.strip().lower() for c in rows.columns]
    required = ["subject", "video", "onset", "apex", "offset", "label"]
    absent = [c for c in required if c not in rows.columns]
    if absent:
        raise DataError(
            f"{annotations}: missing column(s) {absent}; the table needs "
            f"{required} (+ fps unless dataset.fps is set)."
        )
    if "fps" not in rows.columns:
        if fps is None:
            raise DataError(f"{annotations}: no fps column; add one or set dataset.fps.")
        rows["fps"] = fps
    return build_samples(rows, root, classes, dataset)


def summary(result: LoadResult, classes: list[str]) -> str:
    """Counts per class and subject, then every skipped row with its reason (Markdown)."""
    samples = result.samples
    lines = [f"# Samples: {len(samples)} usable, {len(result.skipped)} skipped", ""]
    if len(samples):
        counts = samples.groupby(["subject", "label"]).size().unstack(fill_value=0)
        counts = counts.reindex(columns=classes, fill_value=0)
        counts.loc["total"] = counts.sum()
        counts["total"] = counts.sum(axis=1)
        lines += ["## Counts per subject and class", "", "```", counts.to_string(), "```", ""]
    lines += ["## Skipped rows", ""]
    lines += [f"- {s['sample']}: {s['reason']}" for s in result.skipped] or ["- none"]
    if result.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in result.notes]
    return "\n".join(lines) + "\n"
