"""dataset.loader -> the samples table: `load`, the dispatch over every loader, and the MEGC
2019 composite, the one loader built from the others (those of mer.data.datasets).

MEGC 2019: the composite list of CASME II, SMIC-HS and SAMM, relabelled negative / positive /
surprise.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mer.data.datasets import (
    ALL_EMOTIONS,
    MEGC2019_CLASSES,
    SMIC_CLASSES,
    find_annotations,
    load_casme2,
    load_samm,
    load_smic,
)
from mer.data.frames import DataError
from mer.data.samples import SAMPLE_COLUMNS, LoadResult, load_table, normalise_label

LOADERS = ("casme2", "samm", "smic", "megc2019", "table")
MEGC2019_DATABASES = ("casme2", "smic", "samm")


def read_composite(path: str | Path) -> pd.DataFrame:
    """combined_3class_gt.csv: database, subject, video, label (0/1/2), no header."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"composite list {path} does not exist; set dataset.annotations.")
    rows = pd.read_csv(path, header=None, dtype=str, keep_default_na=False)
    if rows.shape[1] != 4 or rows.iloc[0, 3].strip().lower() == "label":
        # A header row is allowed: drop it if the first label cell is not a number.
        rows = pd.read_csv(path, dtype=str, keep_default_na=False)
    if rows.shape[1] != 4:
        raise DataError(
            f"{path}: expected 4 columns (database, subject, video, label 0/1/2), "
            f"found {rows.shape[1]}; use the MEGC 2019 combined_3class_gt.csv."
        )
    rows.columns = ["database", "subject", "video", "label"]
    rows = rows.map(str.strip)
    rows["database"] = rows["database"].str.lower()
    unknown = sorted(set(rows["database"]) - set(MEGC2019_DATABASES))
    bad_labels = sorted(set(rows["label"]) - {"0", "1", "2"})
    if unknown or bad_labels:
        raise DataError(
            f"{path}: databases {unknown} (expected {list(MEGC2019_DATABASES)}) or labels "
            f"{bad_labels} (expected 0, 1, 2) are not MEGC 2019 composite values."
        )
    return rows


def _composite_source_id(database: str, subject: str, video: str) -> str:
    """The composite row's sample id in its source loader's table."""
    if database == "casme2":
        return f"{subject}_{video}"  # sub01 + EP02_01f
    return video  # SAMM 006_1_2, SMIC s01_ne_01


def load_megc2019(
    annotations: str | Path,
    sources: dict[str, dict],
    classes: list[str] | None = None,
    apex_fill: str = "spot",
    dataset: str = "megc2019",
    apex_spotting: str = "frame_difference",
) -> LoadResult:
    """MEGC 2019 composite (See et al. 2019): 442 clips of CASME II, SMIC-HS and SAMM, 3 classes.

    `annotations` is combined_3class_gt.csv; `sources` gives each database's frames and sheet:
    {"casme2": {"root", "annotations", "layout"}, "smic": {"root"}, "samm": {"root",
    "annotations"}}. Onset/apex/offset come from each source's loader; the label is the
    composite's (0 negative, 1 positive, 2 surprise). Ids are prefixed with the database
    (casme2_sub01, smic_s01, samm_006) so that subjects stay apart across databases, and the
    `dataset` column holds the source database. `apex_fill` applies to every source: 'spot'
    spots SMIC's apex and the two SAMM apexes outside onset..offset from the frames.
    """
    classes = classes or MEGC2019_CLASSES
    missing_classes = sorted(set(MEGC2019_CLASSES) - {c.lower() for c in classes})
    if missing_classes:
        raise DataError(f"the MEGC 2019 composite needs the classes {MEGC2019_CLASSES}.")
    composite = read_composite(annotations)
    notes = [f"composite list {Path(annotations).name}: {len(composite)} rows"]
    kept, skipped = [], []
    for database in MEGC2019_DATABASES:
        wanted = composite[composite["database"] == database]
        if wanted.empty:
            continue
        source = sources.get(database)
        if not source or "root" not in source:
            raise DataError(
                f"the composite lists {len(wanted)} {database} clips but dataset.sources."
                f"{database}.root is not set; give the folder of its frames."
            )
        loaded = load_source(database, source, apex_fill, apex_spotting)
        notes += [f"{database}: {note}" for note in loaded.notes]
        by_id = loaded.samples.set_index("sample")
        reasons = {s["sample"]: s["reason"] for s in loaded.skipped}
        for _, row in wanted.iterrows():
            source_id = _composite_source_id(database, row["subject"], row["video"])
            sample = f"{database}_{source_id}"
            if source_id not in by_id.index:
                reason = reasons.get(source_id, f"not found in the {database} sheet or frames")
                skipped.append(
                    {"sample": sample, "reason": f"{database}: {reason}", "kind": "folder"}
                )
                continue
            found = by_id.loc[source_id]
            label = normalise_label(MEGC2019_CLASSES[int(row["label"])], classes)
            kept.append(
                {
                    **found.to_dict(),
                    "sample": sample,
                    "dataset": database,
                    "subject": f"{database}_{_composite_subject(database, found['subject'])}",
                    "label": label,
                }
            )
    samples = pd.DataFrame(kept, columns=SAMPLE_COLUMNS)
    counts = samples.groupby("dataset").size().to_dict() if len(samples) else {}
    notes.append(f"samples per source database: {counts}")
    return LoadResult(samples=samples, skipped=skipped, notes=notes)


def _composite_subject(database: str, subject: str) -> str:
    # CASME II's loader keeps the sheet's '01'; its folders (and MEGC 2019) say sub01.
    return f"sub{subject}" if database == "casme2" else subject


def load_source(
    database: str, source: dict, apex_fill: str, apex_spotting: str = "frame_difference"
) -> LoadResult:
    """One database of the composite, every emotion kept (the composite relabels them)."""
    root = source["root"]
    if database == "smic":
        return load_smic(root, SMIC_CLASSES, apex_fill, source.get("fps"), "smic", apex_spotting)
    annotations = source.get("annotations") or find_annotations(database, root)
    if database == "casme2":
        return load_casme2(
            annotations,
            root,
            ALL_EMOTIONS["casme2"],
            source.get("layout", "cropped"),
            apex_fill,
            source.get("fps"),
            "casme2",
            apex_spotting,
        )
    return load_samm(
        annotations, root, ALL_EMOTIONS["samm"], apex_fill, source.get("fps"), "samm", apex_spotting
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
    apex_spotting: str = "frame_difference",
    sources: dict[str, dict] | None = None,
) -> LoadResult:
    """Dispatch to the loader named in the config (dataset.loader)."""
    dataset = dataset or loader
    if loader != "smic" and not annotations:
        raise DataError(f"the {loader} loader needs an annotation file (dataset.annotations).")
    if loader != "megc2019" and not root:
        raise DataError(f"the {loader} loader needs the frames' folder (dataset.root).")
    if loader == "casme2":
        return load_casme2(
            annotations, root, classes, layout, apex_fill, fps, dataset, apex_spotting
        )
    if loader == "samm":
        return load_samm(annotations, root, classes, apex_fill, fps, dataset, apex_spotting)
    if loader == "smic":
        return load_smic(root, classes, apex_fill, fps, dataset, apex_spotting)
    if loader == "megc2019":
        return load_megc2019(annotations, sources or {}, classes, apex_fill, dataset, apex_spotting)
    if loader == "table":
        if not classes:
            raise DataError("the table loader needs the class names (dataset.classes).")
        return load_table(annotations, root, classes, dataset, fps, apex_fill, apex_spotting)
    raise DataError(f"unknown loader {loader!r}; use one of {list(LOADERS)}.")
