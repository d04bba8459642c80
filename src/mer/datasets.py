"""CASME II and SAMM: the official annotation sheet + the frame tree -> the samples table.

One function per database. Each states its database's facts, and every fix to its licensed
annotation sheet, as explicit commented code (checked against the real files:
../shared/notes/datasets.md). Rows that cannot be used are reported with a reason by
`samples.build_samples`, never dropped silently; the fixes applied go to LoadResult.notes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from mer.samples import (
    DataError,
    LoadResult,
    build_samples,
    fill_missing_apex,
    frame_cell,
    load_table,
)

LOADERS = ("casme2", "samm", "table")
CASME2_CLASSES = ["happiness", "disgust", "repression", "surprise", "others"]
SAMM_CLASSES = ["anger", "contempt", "happiness", "surprise", "other"]
DEFAULT_CLASSES = {"casme2": CASME2_CLASSES, "samm": SAMM_CLASSES}
FPS = {"casme2": 200.0, "samm": 200.0}
# CASME II layout -> (the folder under the dataset that holds sub01..sub26, frame file stems).
CASME2_LAYOUTS = {
    "cropped": ("Cropped", r"reg_img\d+"),
    "raw": ("CASME2_RAW_selected", r"img\d+"),
}
# The official annotation files, for `mer check-data` when --annotations is not given.
ANNOTATION_GLOBS = {"casme2": "CASME2-coding-*", "samm": "SAMM_Micro_FACS_Codes*"}
SHEET_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".csv", ".tsv"}
_HEADER_SEARCH_ROWS = 30


def _key(name) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def read_sheet(
    path: str | Path, columns: dict[str, tuple[str, ...]], sheet: str | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Rows of an annotation sheet (.xlsx or a .csv/.tsv export) under canonical column names.

    `columns` maps each canonical name to the headers accepted for it, compared without case,
    spaces or punctuation. The header row is searched for in the first rows, so a preamble
    (SAMM has 13 rows of it) needs no fixed skiprows. Cells are read as text, so subject
    '01' stays '01'. Returns the rows and notes on what was done.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"annotation file {path} does not exist; set dataset.annotations.")
    try:
        if path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
            sheets = pd.read_excel(path, sheet_name=None, header=None, dtype=str)
            raw = sheets[sheet if sheet in sheets else next(iter(sheets))]
        else:
            sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
            raw = pd.read_csv(path, sep=sep, header=None, dtype=str, keep_default_na=False)
    except Exception as error:  # whatever the reader raises, the file is unusable as it is
        raise DataError(
            f"{path} is not a readable annotation sheet ({type(error).__name__}: {error}); "
            "open it in a spreadsheet program and save it again as .xlsx or .csv."
        ) from error
    raw = raw.fillna("").astype(str).map(str.strip)
    accepted = {name: {_key(a) for a in aliases} for name, aliases in columns.items()}
    best: dict[str, int] = {}
    for header_row in range(min(_HEADER_SEARCH_ROWS, len(raw))):
        keys = [_key(cell) for cell in raw.iloc[header_row]]
        found = {}
        for name, wanted in accepted.items():
            hits = [i for i, key in enumerate(keys) if key in wanted]
            if hits:
                found[name] = hits[0]
        if len(found) == len(columns):
            break
        best = max(best, found, key=len)
    else:
        missing = {name: columns[name] for name in columns if name not in best}
        raise DataError(
            f"{path}: no header row with all the needed columns in its first "
            f"{_HEADER_SEARCH_ROWS} rows; missing (accepted headers): {missing}."
        )
    rows = raw.iloc[header_row + 1 :, list(found.values())]
    rows.columns = list(found)
    rows = rows[(rows != "").any(axis=1)].reset_index(drop=True)
    notes = [f"annotations: {path.name}, {len(rows)} rows"]
    if header_row:
        notes[0] += f" (header on row {header_row + 1}, {header_row} preamble rows skipped)"
    return rows, notes


def _pad_subjects(rows: pd.DataFrame, digits: int) -> list[str]:
    """Zero-pad numeric subject ids to the dataset's width; returns a note if any changed."""
    padded = rows["subject"].map(
        lambda text: f"{frame_cell(text):0{digits}d}" if frame_cell(text) is not None else text
    )
    changed = sorted(set(rows["subject"][padded != rows["subject"]]))
    rows["subject"] = padded
    if not changed:
        return []
    return [f"subject ids {changed} zero-padded to {digits} digits to match the folder names"]


def _dataset_folder(root: Path, folder: str, subject_glob: str) -> tuple[Path, list[str]]:
    """root itself, or root/folder when root is the dataset's top folder rather than the one
    that holds the subject folders."""
    if not any(root.glob(subject_glob)) and (root / folder).is_dir():
        return root / folder, [f"root {root} holds {folder}/; reading the frames from there"]
    return root, []


def _apex_at_the_ends(result: LoadResult) -> list[str]:
    samples = result.samples
    notes = []
    for where, same in (
        ("onset", samples.apex == samples.onset),
        ("offset", samples.apex == samples.offset),
    ):
        if same.any():
            notes.append(
                f"apex == {where} (valid, but little onset->apex motion) in "
                f"{', '.join(samples['sample'][same])}"
            )
    return notes


def load_casme2(
    annotations: str | Path,
    root: str | Path,
    classes: list[str] | None = None,
    layout: str = "cropped",
    apex_fill: str = "midpoint",
    fps: float | None = None,
    dataset: str = "casme2",
) -> LoadResult:
    """CASME II (Yan et al. 2014): a coding sheet (20140508 or 20190701) + its frame folders.

    `root` holds sub01..sub26 (Cropped/ for layout 'cropped', frames reg_img<N>.jpg;
    CASME2_RAW_selected/ for 'raw', frames img<N>.jpg); the dataset's top folder also works.
    Sample ids are sub<subject>_<Filename>: a Filename alone repeats across subjects.
    """
    if layout not in CASME2_LAYOUTS:
        raise DataError(f"CASME II layout must be one of {list(CASME2_LAYOUTS)}, not {layout!r}")
    folder, frame_pattern = CASME2_LAYOUTS[layout]
    # Both coding versions share these columns (plus two blank ones and Action Units);
    # 20190701 changes 57 AU strings and relabels 3 rows sadness -> surprise.
    rows, notes = read_sheet(
        annotations,
        {
            "subject": ("Subject",),
            "video": ("Filename",),
            "onset": ("OnsetFrame", "Onset"),
            "apex": ("ApexFrame", "Apex"),
            "offset": ("OffsetFrame", "Offset"),
            "label": ("Estimated Emotion", "Emotion"),
        },
    )
    # Subject cells are text '01'..'26' (folders sub01..sub26); a CSV export may drop the zero.
    notes += _pad_subjects(rows, digits=2)
    # EP03_02 appears under 6 subjects: a sample is the subject's clip.
    rows["sample"] = "sub" + rows["subject"] + "_" + rows["video"]
    # CASME II coding 20140508: the ApexFrame of sub04/EP12_01f is '/' (not annotated).
    # Policy apex_fill decides: midpoint of onset..offset, or drop (listed in the report).
    rows, skipped, filled = fill_missing_apex(rows, apex_fill, lambda row: row["sample"])
    rows["fps"] = fps or FPS["casme2"]
    root, found = _dataset_folder(Path(root), folder, "sub*")
    result = build_samples(
        rows,
        root,
        classes or CASME2_CLASSES,
        dataset,
        clip_dir_of=lambda row: (f"sub{row['subject']}", row["video"]),
        skipped=skipped,
        frame_pattern=frame_pattern,
    )
    # Apex == onset (sub05/EP09_05f) or == offset (4 rows) is valid, but worth knowing.
    result.notes = notes + found + filled + _apex_at_the_ends(result)
    return result


def load_samm(
    annotations: str | Path,
    root: str | Path,
    classes: list[str] | None = None,
    apex_fill: str = "midpoint",
    fps: float | None = None,
    dataset: str = "samm",
) -> LoadResult:
    """SAMM (Davison et al. 2018): SAMM_Micro_FACS_Codes_v2.xlsx + <subject>/<Filename>/ frames.

    `root` holds the subject folders 006..037 (the dataset's top folder also works). Frames
    are <subject>_<N>.jpg with inconsistent zero padding (006_05562.jpg): the frame number
    is the last integer of the name, never a formatted name.
    """
    # Sheet MICRO_ONLY; the header is on Excel row 14 after 13 preamble rows (found, not fixed).
    rows, notes = read_sheet(
        annotations,
        {
            "subject": ("Subject",),
            "video": ("Filename",),
            "onset": ("Onset Frame", "Onset"),
            "apex": ("Apex Frame", "Apex"),
            "offset": ("Offset Frame", "Offset"),
            "label": ("Estimated Emotion", "Emotion"),
        },
        sheet="MICRO_ONLY",
    )
    # Subjects are text '006'..'037'; a CSV export may drop the zeros.
    notes += _pad_subjects(rows, digits=3)
    # Filenames are unique and start with the subject ('006_1_2'): they are the sample ids.
    own = rows.apply(lambda row: row["video"].startswith(row["subject"] + "_"), axis=1)
    rows["sample"] = rows["video"].where(own, rows["subject"] + "_" + rows["video"])
    # SAMM v2: the apex lies outside onset..offset for 028_4_1 (1071, 1143, 1134) and 032_3_1
    # (4896, 1930, 4970). Which frame was meant is unknown, so build_samples skips both with
    # the reason instead of guessing. A missing apex (none in v2) follows apex_fill.
    rows, skipped, filled = fill_missing_apex(rows, apex_fill, lambda row: row["sample"])
    rows["fps"] = fps or FPS["samm"]
    root, found = _dataset_folder(Path(root), "SAMM", "[0-9][0-9][0-9]")
    result = build_samples(
        rows,
        root,
        classes or SAMM_CLASSES,
        dataset,
        clip_dir_of=lambda row: (row["subject"], row["video"]),
        skipped=skipped,
    )
    result.notes = notes + found + filled + _apex_at_the_ends(result)
    return result


def find_annotations(loader: str, root: str | Path) -> Path:
    """The official annotation file in root or one of its two parents (newest name first)."""
    if loader not in ANNOTATION_GLOBS:
        raise DataError(f"loader {loader!r} has no standard annotation file; pass --annotations.")
    root = Path(root).resolve()
    for folder in (root, *root.parents[:2]):
        found = sorted(
            p for p in folder.glob(ANNOTATION_GLOBS[loader]) if p.suffix.lower() in SHEET_SUFFIXES
        )
        if found:
            return found[-1]
    raise DataError(
        f"no {ANNOTATION_GLOBS[loader]} annotation file in {root} or its two parent folders; "
        "pass --annotations FILE."
    )


def load(
    loader: str,
    annotations: str | Path,
    root: str | Path,
    classes: list[str] | None = None,
    dataset: str | None = None,
    fps: float | None = None,
    layout: str = "cropped",
    apex_fill: str = "midpoint",
) -> LoadResult:
    """Dispatch to the loader named in the config (dataset.loader)."""
    dataset = dataset or loader
    if loader == "casme2":
        return load_casme2(annotations, root, classes, layout, apex_fill, fps, dataset)
    if loader == "samm":
        return load_samm(annotations, root, classes, apex_fill, fps, dataset)
    if loader == "table":
        if not classes:
            raise DataError("the table loader needs the class names (dataset.classes).")
        return load_table(annotations, root, classes, dataset, fps, apex_fill)
    raise DataError(f"unknown loader {loader!r}; use one of {list(LOADERS)}.")
