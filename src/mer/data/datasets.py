"""CASME II, SAMM and SMIC-HS -> the samples table.

CASME II and SAMM: the official annotation sheet + the frame tree. SMIC-HS: the frame tree
alone (its folders carry the label; onset and offset are the clip's ends). The MEGC 2019
composite of the three, and the dispatch over every loader, are in mer.data.loaders.

One function per database. Each states its database's facts, and every fix to its licensed
annotation sheet, as explicit commented code (checked against the real files:
docs/datasets.md). Rows that cannot be used are reported with a reason by
`samples.build_samples`, never dropped silently; the fixes applied go to LoadResult.notes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from mer.data.frames import DataError, list_frames
from mer.data.samples import (
    SAMPLE_COLUMNS,
    LoadResult,
    build_samples,
    fill_missing_apex,
    frame_cell,
)

CASME2_CLASSES = ["happiness", "disgust", "repression", "surprise", "others"]
SAMM_CLASSES = ["anger", "contempt", "happiness", "surprise", "other"]
SMIC_CLASSES = ["negative", "positive", "surprise"]
# MEGC 2019 composite (combined_3class_gt.csv): label 0 negative, 1 positive, 2 surprise, as
# in the challenge's ground truth (CASME II: 88 / 32 / 25 = disgust+repression / happiness /
# surprise; SMIC's clip names s01_ne_, _po_, _sur_ carry the same labels).
MEGC2019_CLASSES = ["negative", "positive", "surprise"]
DEFAULT_CLASSES = {
    "casme2": CASME2_CLASSES,
    "samm": SAMM_CLASSES,
    "smic": SMIC_CLASSES,
    "megc2019": MEGC2019_CLASSES,
}
# Every emotion of the full sheets: the composite relabels them, so none may be skipped here.
ALL_EMOTIONS = {
    "casme2": CASME2_CLASSES + ["fear", "sadness"],
    "samm": SAMM_CLASSES + ["fear", "disgust", "sadness"],
    "smic": SMIC_CLASSES,
}
FPS = {"casme2": 200.0, "samm": 200.0, "smic": 100.0}
# SMIC-HS folder names of the classes and the codes in its clip names (s1_ne_01).
SMIC_CODES = {"negative": "ne", "positive": "po", "surprise": "sur"}
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
    apex_spotting: str = "frame_difference",
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
        apex_spotting=apex_spotting if apex_fill == "spot" else None,
    )
    # Apex == onset (sub05/EP09_05f) or == offset (4 rows) is valid, but worth knowing.
    result.notes = notes + found + filled + result.notes + _apex_at_the_ends(result)
    return result


def load_samm(
    annotations: str | Path,
    root: str | Path,
    classes: list[str] | None = None,
    apex_fill: str = "midpoint",
    fps: float | None = None,
    dataset: str = "samm",
    apex_spotting: str = "frame_difference",
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
    # the reason instead of guessing, unless apex_fill is 'spot' (the apex is then spotted
    # from the frames). A missing apex (none in v2) follows apex_fill.
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
        apex_spotting=apex_spotting if apex_fill == "spot" else None,
    )
    result.notes = notes + found + filled + result.notes + _apex_at_the_ends(result)
    return result


def _smic_folder(root: Path) -> tuple[Path, list[str]]:
    """The folder that holds s1..s20: root, root/HS or root/SMIC*/HS."""
    if any(root.glob("s*/micro")):
        return root, []
    for candidate in (root / "HS", *sorted(root.glob("*/HS"))):
        if any(candidate.glob("s*/micro")):
            return candidate, [f"root {root} holds {candidate.relative_to(root)}/; reading there"]
    raise DataError(
        f"{root} holds no SMIC-HS subject folder s<N>/micro/; set dataset.root to the HS folder "
        "(HS/s1/micro/negative/s1_ne_01/*.bmp)."
    )


def smic_rows(root: str | Path) -> tuple[pd.DataFrame, list[dict], list[str]]:
    """Annotation rows read from the SMIC-HS tree s<N>/micro/<class>/s<N>_<code>_<k>/.

    SMIC has no frame-level sheet: the label is the class folder, onset and offset are the
    first and last frame of the clip folder (its clips are cut to the expression), the apex is
    not annotated. Ids take the MEGC 2019 form: subject s01, video s01_ne_01, whatever the
    zero padding on disk (s1, s1_ne_1).
    """
    root, notes = _smic_folder(Path(root))
    rows, skipped = [], []
    for subject_dir in sorted(p for p in root.iterdir() if re.fullmatch(r"s\d+", p.name)):
        subject = f"s{int(subject_dir.name[1:]):02d}"
        for label, code in SMIC_CODES.items():
            for clip_dir in sorted(
                p for p in (subject_dir / "micro" / label).glob("*") if p.is_dir()
            ):
                match = re.fullmatch(rf"s(\d+)_{code}_(\d+)", clip_dir.name)
                video = f"{subject}_{code}_{int(match.group(2)):02d}" if match else clip_dir.name
                if match is None or int(match.group(1)) != int(subject_dir.name[1:]):
                    skipped.append(
                        {
                            "sample": f"{subject}/{label}/{clip_dir.name}",
                            "reason": f"clip folder {clip_dir} is not named {subject_dir.name}_"
                            f"{code}_<k> as SMIC-HS names the {label} clips of that subject",
                            "kind": "path",
                        }
                    )
                    continue
                frames = list_frames(clip_dir)
                rows.append(
                    {
                        "sample": video,
                        "subject": subject,
                        "video": video,
                        "label": label,
                        "onset": min(frames) if frames else "",
                        "apex": "",
                        "offset": max(frames) if frames else "",
                        "clip_dir": (subject_dir.name, "micro", label, clip_dir.name),
                    }
                )
    if not rows and not skipped:
        raise DataError(f"{root}: no clip folder under s<N>/micro/{{{','.join(SMIC_CODES)}}}/.")
    return pd.DataFrame(rows), skipped, notes + [f"SMIC-HS tree {root}: {len(rows)} clip folders"]


def load_smic(
    root: str | Path,
    classes: list[str] | None = None,
    apex_fill: str = "spot",
    fps: float | None = None,
    dataset: str = "smic",
    apex_spotting: str = "frame_difference",
) -> LoadResult:
    """SMIC-HS (Li et al. 2013), 100 fps: the frame tree alone (see smic_rows).

    The apex is not annotated: apex_fill 'spot' (the default) spots it from the frames with
    mer.data.spotting, 'midpoint' takes the middle of the clip, 'drop' skips every clip.
    """
    rows, skipped, notes = smic_rows(root)
    root = Path(root)
    smic_root, _ = _smic_folder(root)
    if rows.empty:
        return LoadResult(pd.DataFrame(columns=SAMPLE_COLUMNS), skipped, notes)
    # The apex of every SMIC clip is missing: apex_fill decides (the SMIC-HS release has none).
    rows, dropped, filled = fill_missing_apex(rows, apex_fill, lambda row: row["sample"])
    rows["fps"] = fps or FPS["smic"]
    clip_dirs = dict(zip(rows["sample"], rows["clip_dir"], strict=True))
    result = build_samples(
        rows.drop(columns="clip_dir"),
        smic_root,
        classes or SMIC_CLASSES,
        dataset,
        clip_dir_of=lambda row: clip_dirs[row["sample"]],
        skipped=skipped + dropped,
        apex_spotting=apex_spotting if apex_fill == "spot" else None,
    )
    if filled:  # one note per clip would repeat the same fact 164 times
        filled = [f"apex set to the midpoint of onset..offset for {len(filled)} clips"]
    result.notes = notes + filled + result.notes
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
