"""Stage 1: a dataset's annotations and frame folders -> the canonical samples table.

Every loader ends here: `build_samples` checks each annotated clip against its frames on disk
and the configured classes, keeps the usable rows and lists every skipped row with its reason.
Frames are found and read by mer.data.frames.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mer.data.clips import load_clip
from mer.data.frames import DataError, frame_size, list_frames

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
# The EVM temporal filter needs at least this many frames (mer.preprocess.evm reads it here).
MIN_CLIP_FRAMES = 4
# Skips that follow from a choice in the config (the classes, apex_fill), not from a fault in
# the data: `on_bad_sample: fail` stops on every other kind of skip.
CHOSEN_SKIPS = {"label", "apex missing"}


@dataclass
class LoadResult:
    samples: pd.DataFrame
    skipped: list[dict] = field(default_factory=list)  # {sample, reason}
    notes: list[str] = field(default_factory=list)  # fixes applied, facts worth knowing


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


# Why a row can be skipped (the `kind` of a skip entry): a title and what the user can do.
FIXES = {
    "label": (
        "label outside the configured classes",
        "expected for emotions left out of the chosen classes; to keep them, add the class to "
        "dataset.classes",
    ),
    "apex missing": (
        "apex not annotated",
        "set dataset.apex_fill: midpoint to keep the row with its apex at the middle of "
        "onset..offset, or dataset.apex_fill: spot to spot it from the frames (mer.data.spotting)",
    ),
    "frame numbers": (
        "onset/apex/offset not frame numbers",
        "correct the cells in a copy of the annotation file",
    ),
    "frame order": (
        "onset after offset",
        "an annotation error: correct the row in a copy of the annotation file, or leave it out",
    ),
    "apex range": (
        "apex outside onset..offset",
        "an annotation error: correct the row in a copy of the annotation file, leave it out, "
        "or set dataset.apex_fill: spot to spot the apex from the frames",
    ),
    "path": (
        "clip folder name not a plain name inside the data root",
        "rename the clip (no '/', '\\' or '..') in a copy of the annotation file",
    ),
    "folder": (
        "frame folder missing",
        "check that dataset.root is the folder that holds the subject folders (CASME II: "
        "sub01..sub26; SAMM: 006..037) and, for CASME II, that dataset.layout matches",
    ),
    "frames": (
        "frames missing between onset and offset",
        "re-extract the clip: the annotation needs every frame from onset to offset",
    ),
    "short": (
        "clip too short for the EVM temporal filter",
        f"onset..offset must span at least {MIN_CLIP_FRAMES} frames: correct onset/offset in a "
        "copy of the annotation file, or leave the row out",
    ),
    "image": (
        "frame image empty, truncated, corrupt or of another size",
        "restore the named frame from the dataset's original copy (or re-export the clip at "
        "one frame size)",
    ),
}


def clip_image_problem(paths: list[Path]) -> str | None:
    """Why the frames cannot form one clip (first unreadable file, or mixed sizes), or None."""
    first_of_size: dict[tuple[int, int], Path] = {}
    for path in paths:
        try:
            size = frame_size(path)
        except DataError as error:
            return str(error)
        first_of_size.setdefault(size, path)
    if len(first_of_size) > 1:
        sizes = ", ".join(f"{h}x{w} px (first: {p.name})" for (h, w), p in first_of_size.items())
        return f"frames in {paths[0].parent} differ in size: {sizes}; one clip needs one size"
    return None


def frame_cell(value) -> int | None:
    """A frame-number cell as an int ('46', 46, 46.0, '46.0'), or None ('/', '', NaN, 'x')."""
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.0*)?", text):
        return int(float(text))
    return None


APEX_FILLS = ("midpoint", "drop", "spot")


def fill_missing_apex(
    rows: pd.DataFrame, apex_fill: str, sample_of
) -> tuple[pd.DataFrame, list[dict], list[str]]:
    """Apply the missing-apex policy: 'midpoint' of onset..offset, or 'drop' the row; 'spot'
    keeps the rows as they are for build_samples(apex_spotting=...) to spot the apex.

    Returns the rows to keep, the dropped rows as skip entries and a note per filled row.
    Rows whose onset or offset is not a number are left for build_samples to report.
    """
    if apex_fill not in APEX_FILLS:
        raise DataError(f"apex_fill must be one of {list(APEX_FILLS)}, not {apex_fill!r}")
    rows = rows.copy()
    if apex_fill == "spot":  # build_samples spots the apex from the frames (apex_spotting)
        return rows, [], []
    keep, skipped, notes = [], [], []
    for index, row in rows.iterrows():
        onset, apex, offset = (frame_cell(row[k]) for k in ("onset", "apex", "offset"))
        if apex is not None or onset is None or offset is None:
            keep.append(index)
            continue
        sample = sample_of(row)
        if apex_fill == "drop":
            skipped.append(
                {
                    "sample": sample,
                    "reason": f"apex {row['apex']!r} is not annotated and apex_fill is 'drop'",
                    "kind": "apex missing",
                }
            )
            continue
        rows.at[index, "apex"] = str((onset + offset) // 2)
        notes.append(
            f"{sample}: apex {row['apex']!r} is not annotated; set to the midpoint "
            f"{(onset + offset) // 2} of onset {onset} .. offset {offset} (apex_fill: midpoint)"
        )
        keep.append(index)
    return rows.loc[keep], skipped, notes


def _default_sample(row) -> str:
    return str(row["sample"]) if "sample" in row else f"{row['subject']}_{row['video']}"


def _plain_name(part: str) -> bool:
    return part not in ("", ".", "..") and "/" not in part and "\\" not in part


class _Skip(Exception):
    """An annotation row that cannot be used: the reason and its kind (a key of FIXES)."""

    def __init__(self, reason: str, kind: str):
        super().__init__(reason)
        self.reason, self.kind = reason, kind


def build_samples(
    rows: pd.DataFrame,
    root: str | Path,
    classes: list[str],
    dataset: str,
    clip_dir_of=None,
    skipped: list[dict] | None = None,
    frame_pattern: str | None = None,
    check_images: bool = True,
    apex_spotting: str | None = None,
) -> LoadResult:
    """Validate annotation rows (subject, video, onset, apex, offset, label, fps) against disk.

    `clip_dir_of(row)` gives a row's frame folder relative to root as a tuple of plain folder
    names (default: subject, video). The sample id is the `sample` column if rows have one,
    else subject_video. `frame_pattern` restricts which file names count as frames.
    `check_images` decodes every frame from onset to offset, so that an unreadable frame or a
    mixed frame size is found here, before any per-sample job exists.
    `apex_spotting` (a mer.data.spotting method): a row whose apex is missing or outside
    onset..offset gets the apex spotted from its frames (listed in the notes) instead of
    being skipped; this reads the clip, about as costly as one read of its frames.
    Rows that cannot be used are skipped with a reason, never dropped silently.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data root {root} is not a folder; set dataset.root (or --root).")
    clip_dir_of = clip_dir_of or (lambda row: (str(row["subject"]), str(row["video"])))
    skipped = list(skipped or [])
    kept, spotted = [], []
    for _, row in rows.iterrows():
        sample = _default_sample(row)
        try:
            label = _row_label(row, classes)
            onset, apex, offset, spot_reason = _row_frame_numbers(row, apex_spotting)
            clip_dir = _row_clip_dir(row, root, clip_dir_of)
            frames = _clip_frames(clip_dir, onset, offset, frame_pattern, check_images)
            if spot_reason:
                apex = _spot_row_apex(clip_dir, onset, offset, apex_spotting)
                spotted.append(f"{sample} ({spot_reason}) -> {apex}")
        except _Skip as skip:
            skipped.append({"sample": sample, "reason": skip.reason, "kind": skip.kind})
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
    samples = _unique_samples(pd.DataFrame(kept, columns=SAMPLE_COLUMNS))
    notes = []
    if spotted:
        notes.append(
            f"apex spotted from the frames (mer.data.spotting, method {apex_spotting}) for "
            f"{len(spotted)} row(s): " + "; ".join(spotted)
        )
    return LoadResult(samples=samples, skipped=skipped, notes=notes)


def _row_label(row, classes: list[str]) -> str:
    """The row's label among the configured classes; _Skip if it is not one of them."""
    label = normalise_label(row["label"], classes)
    if label is None:
        raise _Skip(
            f"label {row['label']!r} is not one of the configured classes {classes}", "label"
        )
    return label


def _row_frame_numbers(row, apex_spotting: str | None) -> tuple[int, int, int, str | None]:
    """Onset, apex, offset and why the apex is to be spotted (None: it is annotated and valid).

    With `apex_spotting`, a missing apex or one outside onset..offset gets the onset as a
    placeholder until the frames are read; otherwise such a row is a _Skip.
    """
    onset, apex, offset = (frame_cell(row[k]) for k in ("onset", "apex", "offset"))
    spot_reason = None
    if apex_spotting and None not in (onset, offset) and onset <= offset:
        if apex is None:
            spot_reason = f"apex {row['apex']!r} not annotated"
        elif not onset <= apex <= offset:
            spot_reason = f"annotated apex {apex} outside onset {onset} .. offset {offset}"
        if spot_reason:
            apex = onset  # a placeholder until the frames are read below
    if None in (onset, apex, offset):
        raise _Skip(
            f"onset/apex/offset {row['onset']!r}/{row['apex']!r}/{row['offset']!r} "
            "are not all frame numbers",
            "apex missing" if None not in (onset, offset) else "frame numbers",
        )
    if onset > offset:
        raise _Skip(f"onset {onset} is after offset {offset}", "frame order")
    if not onset <= apex <= offset:
        raise _Skip(f"apex {apex} is not within onset {onset} .. offset {offset}", "apex range")
    return onset, apex, offset, spot_reason


def _row_clip_dir(row, root: Path, clip_dir_of) -> Path:
    """The row's frame folder inside root; _Skip if its name leaves root or it does not exist."""
    parts = [str(p) for p in clip_dir_of(row)]
    clip_dir = safe_clip_dir(root, *parts) if all(map(_plain_name, parts)) else None
    if clip_dir is None:
        raise _Skip(f"clip folder {'/'.join(parts)!r} would leave the data root {root}", "path")
    if not clip_dir.is_dir():
        raise _Skip(f"frame folder {clip_dir} does not exist", "folder")
    return clip_dir


def _clip_frames(
    clip_dir: Path, onset: int, offset: int, frame_pattern: str | None, check_images: bool
) -> dict[int, Path]:
    """The clip folder's frames; _Skip if one of onset..offset is missing or unreadable, or
    the clip is too short for the EVM temporal filter."""
    try:
        frames = list_frames(clip_dir, frame_pattern)
    except DataError as error:
        raise _Skip(str(error), "frames") from error
    missing = [n for n in range(onset, offset + 1) if n not in frames]
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
        named = f" named like {frame_pattern!r}" if frame_pattern else ""
        raise _Skip(
            f"{len(missing)} frame(s){named} between onset and offset missing in "
            f"{clip_dir}: {shown}",
            "frames",
        )
    if offset - onset + 1 < MIN_CLIP_FRAMES:
        raise _Skip(
            f"onset {onset} .. offset {offset} is {offset - onset + 1} frame(s); the EVM "
            f"temporal filter needs at least {MIN_CLIP_FRAMES}",
            "short",
        )
    problem = check_images and clip_image_problem([frames[n] for n in range(onset, offset + 1)])
    if problem:
        raise _Skip(problem, "image")
    return frames


def _spot_row_apex(clip_dir: Path, onset: int, offset: int, method: str) -> int:
    """The apex frame number spotted from onset..offset; _Skip if the clip cannot be read."""
    from mer.data.spotting import spot_apex  # scipy, only when an apex is spotted

    try:
        return onset + spot_apex(load_clip(clip_dir, onset, offset), 0, method)
    except DataError as error:
        raise _Skip(f"apex spotting failed: {error}", "frames") from error


def _unique_samples(samples: pd.DataFrame) -> pd.DataFrame:
    """samples, unchanged; DataError if a sample id appears twice."""
    duplicated = samples["sample"].duplicated(keep=False)
    if duplicated.any():
        raise DataError(
            f"sample ids are not unique: {sorted(set(samples['sample'][duplicated]))}; "
            "each subject/video pair must appear once in the annotations."
        )
    return samples


def load_table(
    annotations: str | Path,
    root: str | Path,
    classes: list[str],
    dataset: str,
    fps: float | None = None,
    apex_fill: str = "midpoint",
    apex_spotting: str = "frame_difference",
) -> LoadResult:
    """Generic loader: a CSV/TSV with subject, video, onset, apex, offset, label (and fps).

    Frames live in <root>/<subject>/<video>/; a blank or non-numeric apex follows `apex_fill`.
    """
    annotations = Path(annotations)
    if not annotations.is_file():
        raise DataError(f"annotation table {annotations} does not exist; set dataset.annotations.")
    sep = "\t" if annotations.suffix.lower() in (".tsv", ".tab") else ","
    try:
        rows = pd.read_csv(annotations, sep=sep, dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError) as error:
        raise DataError(f"{annotations} is not a readable CSV/TSV table: {error}") from error
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
    rows, skipped, notes = fill_missing_apex(rows, apex_fill, _default_sample)
    spotting = apex_spotting if apex_fill == "spot" else None
    result = build_samples(rows, root, classes, dataset, skipped=skipped, apex_spotting=spotting)
    result.notes = notes + result.notes
    return result


def faults(result: LoadResult) -> list[dict]:
    """The skipped rows that are faults in the data, not the effect of a config choice."""
    return [s for s in result.skipped if s.get("kind") not in CHOSEN_SKIPS]


def read_samples(path: str | Path) -> pd.DataFrame:
    """samples.tsv with its id columns kept as text (subject '01' stays '01', not 1)."""
    return pd.read_csv(path, sep="\t", dtype={"sample": str, "subject": str, "video": str})


def summary(result: LoadResult, classes: list[str]) -> str:
    """Counts per class and subject, the problems and their fixes, every skipped row (Markdown)."""
    samples = result.samples
    lines = [f"# Samples: {len(samples)} usable, {len(result.skipped)} skipped", ""]
    if len(samples):
        counts = samples.groupby(["subject", "label"]).size().unstack(fill_value=0)
        counts = counts.reindex(columns=classes, fill_value=0)
        counts.loc["total"] = counts.sum()
        counts["total"] = counts.sum(axis=1)
        lines += ["## Counts per subject and class", "", "```", counts.to_string(), "```", ""]
    if result.skipped:
        kinds = pd.Series([s.get("kind", "other") for s in result.skipped]).value_counts()
        lines += ["## Problems and how to fix them", ""]
        for kind, count in kinds.items():
            title, fix = FIXES.get(kind, (kind, "see the reasons below"))
            lines.append(f"- {title} ({count} row{'s' * (count > 1)}): {fix}")
        lines += [""]
    lines += ["## Skipped rows", ""]
    lines += [f"- {s['sample']}: {s['reason']}" for s in result.skipped] or ["- none"]
    if result.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in result.notes]
    return "\n".join(lines) + "\n"
