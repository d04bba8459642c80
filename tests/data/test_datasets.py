"""CASME II / SAMM loaders on the real annotation sheets with fake frame trees.

No licensed frames exist here: every frame is the same tiny JPEG, hard-linked under the real
naming (reg_img<N>.jpg, img<N>.jpg, <subject>_<N>.jpg with SAMM's varying zero padding).
Tests that read the real sheets skip when ../shared/realdata is absent (a fresh clone).
"""

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from conftest import REPO, SHARED, run_snakemake
from mer.data import datasets, frames, samples

ANNOTATIONS = SHARED / "realdata" / "annotations"
CASME2_SHEET = ANNOTATIONS / "CASME2-coding-20140508.xlsx"
SAMM_SHEET = ANNOTATIONS / "SAMM_Micro_FACS_Codes_v2.xlsx"
SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")
needs_casme2 = pytest.mark.skipif(not CASME2_SHEET.exists(), reason=f"{CASME2_SHEET} absent")
needs_samm = pytest.mark.skipif(not SAMM_SHEET.exists(), reason=f"{SAMM_SHEET} absent")


def write_frames(folder: Path, numbers, name, template: Path) -> None:
    """One hard link per frame to a single tiny JPEG: thousands of frames in a blink."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        os.link(template, folder / f"{name(n)}.jpg")


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "frame.jpg"
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (16, 16), dtype=np.uint8))
    return path


def sheet_rows(path: Path, **read) -> pd.DataFrame:
    return pd.read_excel(path, dtype=str, **read)


@pytest.fixture(scope="module")
def casme2_tree(tmp_path_factory, template) -> Path:
    """Cropped/subXX/<Filename>/reg_img<N>.jpg for onset..offset of every row of the sheet."""
    root = tmp_path_factory.mktemp("casme2") / "Cropped"
    for row in sheet_rows(CASME2_SHEET).itertuples():
        write_frames(
            root / f"sub{row.Subject}" / row.Filename,
            range(int(row.OnsetFrame), int(row.OffsetFrame) + 1),
            lambda n: f"reg_img{n}",
            template,
        )
    return root


SAMM_PADDINGS = [lambda s, n: f"{s}_{n:05d}", lambda s, n: f"{s}_{n:04d}", lambda s, n: f"{s}_{n}"]


@pytest.fixture(scope="module")
def samm_tree(tmp_path_factory, template) -> Path:
    """<subject>/<Filename>/<subject>_<N>.jpg, two frames beyond each end, padding varying
    from clip to clip (006_05562, 006_5562) and, in 006_1_2, within the clip."""
    root = tmp_path_factory.mktemp("samm") / "SAMM"
    sheet = sheet_rows(SAMM_SHEET, sheet_name="MICRO_ONLY", skiprows=13)
    for index, row in sheet.iterrows():
        subject, clip = row["Subject"], row["Filename"]
        numbers = range(int(row["Onset Frame"]) - 2, int(row["Offset Frame"]) + 3)

        def name(n, pad=SAMM_PADDINGS[index % 3], subject=subject, clip=clip):
            if clip == "006_1_2":
                return f"{subject}_{n:05d}" if n % 2 else f"{subject}_{n}"
            return pad(subject, n)

        write_frames(root / subject / clip, numbers, name, template)
    return root


@needs_casme2
def test_casme2_2014_gives_246_five_class_samples_over_26_subjects(casme2_tree):
    result = datasets.load_casme2(CASME2_SHEET, casme2_tree)
    table = result.samples
    assert len(table) == 246
    assert table.subject.nunique() == 26
    assert sorted(table.subject.unique())[:2] == ["01", "02"]
    assert dict(Counter(table.label)) == {
        "others": 99,
        "disgust": 63,
        "happiness": 32,
        "repression": 27,
        "surprise": 25,
    }
    assert table["sample"].is_unique
    assert Counter(s["kind"] for s in result.skipped) == {"label": 9}  # sadness 7, fear 2
    # EP03_02 is a clip of 6 subjects: the subject makes the sample id unique.
    assert (table.video == "EP03_02").sum() == 6
    assert "sub01_EP03_02" in set(table["sample"])


@needs_casme2
def test_casme2_clip_without_apex_is_kept_at_the_midpoint_with_a_note(casme2_tree):
    result = datasets.load_casme2(CASME2_SHEET, casme2_tree, apex_fill="midpoint")
    row = result.samples.set_index("sample").loc["sub04_EP12_01f"]
    assert (row.onset, row.apex, row.offset) == (261, 291, 321)
    assert any("sub04_EP12_01f" in note and "midpoint" in note for note in result.notes)
    assert any("apex == onset" in note and "sub05_EP09_05f" in note for note in result.notes)


@needs_casme2
def test_casme2_clip_without_apex_is_skipped_with_a_reason_under_drop(casme2_tree):
    result = datasets.load_casme2(CASME2_SHEET, casme2_tree, apex_fill="drop")
    assert len(result.samples) == 245
    reasons = {s["sample"]: s["reason"] for s in result.skipped}
    assert "'/'" in reasons["sub04_EP12_01f"] and "drop" in reasons["sub04_EP12_01f"]
    report = samples.summary(result, datasets.CASME2_CLASSES)
    assert "apex_fill: midpoint" in report  # the fix is named


@needs_casme2
def test_casme2_csv_export_with_numeric_subjects_reads_like_the_sheet(casme2_tree, tmp_path):
    exported = sheet_rows(CASME2_SHEET)
    exported["Subject"] = exported["Subject"].astype(int)  # what a spreadsheet export does
    exported.to_csv(tmp_path / "casme2.csv", index=False)
    from_csv = datasets.load_casme2(tmp_path / "casme2.csv", casme2_tree)
    from_sheet = datasets.load_casme2(CASME2_SHEET, casme2_tree)
    pd.testing.assert_frame_equal(from_csv.samples, from_sheet.samples)
    assert any("zero-padded" in note for note in from_csv.notes)


@needs_casme2
def test_casme2_root_may_be_the_dataset_folder_above_cropped(casme2_tree):
    result = datasets.load_casme2(CASME2_SHEET, casme2_tree.parent)
    assert len(result.samples) == 246
    assert any("Cropped" in note for note in result.notes)


@needs_samm
def test_samm_v2_gives_136_five_class_rows_over_27_subjects(samm_tree):
    result = datasets.load_samm(SAMM_SHEET, samm_tree)
    table = result.samples
    apex_outside = {s["sample"]: s["reason"] for s in result.skipped if s["kind"] == "apex range"}
    assert len(table) + len(apex_outside) == 136
    assert sorted(apex_outside) == ["028_4_1", "032_3_1"]
    assert "1143" in apex_outside["028_4_1"] and "not within" in apex_outside["028_4_1"]
    assert len(table) == 134 and table.subject.nunique() == 27
    assert Counter(table.label) == {
        "anger": 56,
        "other": 26,
        "happiness": 26,
        "surprise": 15,
        "contempt": 11,
    }
    assert Counter(s["kind"] for s in result.skipped) == {"label": 23, "apex range": 2}
    assert table.subject.iloc[0] == "006" and table["sample"].iloc[0] == "006_1_2"
    assert any("13 preamble rows" in note for note in result.notes)


@needs_samm
def test_samm_frames_are_found_whatever_their_zero_padding(samm_tree):
    table = datasets.load_samm(SAMM_SHEET, samm_tree).samples.set_index("sample")
    assert (table.first_frame == table.onset - 2).all()
    assert (table.last_frame == table.offset + 2).all()
    names = {p.name for p in (samm_tree / "006" / "006_1_2").iterdir()}
    assert {"006_5562.jpg", "006_05563.jpg"} <= names  # padding changes within this clip


def casme2_csv(path: Path, rows) -> Path:
    columns = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Estimated Emotion"]
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    return path


def test_frames_sort_by_number_and_never_match_by_substring(tmp_path, template):
    root = tmp_path / "Cropped"
    write_frames(root / "sub01" / "EP01", [98, 99, 100, 101], lambda n: f"reg_img{n}", template)
    # reg_img460 must not stand in for the missing reg_img46.
    write_frames(root / "sub01" / "EP02", [45, 47, 460], lambda n: f"reg_img{n}", template)
    annotations = casme2_csv(
        tmp_path / "a.csv",
        [("01", "EP01", 98, 100, 101, "others"), ("01", "EP02", 45, 46, 47, "others")],
    )
    result = datasets.load_casme2(annotations, root)
    row = result.samples.iloc[0]
    assert (row["sample"], row.first_frame, row.last_frame) == ("sub01_EP01", 98, 101)
    assert list(frames.list_frames(root / "sub01" / "EP01")) == [98, 99, 100, 101]
    [skipped] = result.skipped
    assert skipped["sample"] == "sub01_EP02" and "missing" in skipped["reason"]
    assert ": 46" in skipped["reason"]


def test_casme2_layout_decides_the_frame_names(tmp_path, template):
    raw = tmp_path / "CASME2_RAW_selected"
    write_frames(raw / "sub02" / "EP05", range(10, 15), lambda n: f"img{n}", template)
    annotations = casme2_csv(tmp_path / "a.csv", [("02", "EP05", 10, 12, 14, "Surprise")])
    assert len(datasets.load_casme2(annotations, tmp_path, layout="raw").samples) == 1
    wrong = datasets.load_casme2(annotations, raw, layout="cropped")
    assert wrong.samples.empty and "reg_img" in wrong.skipped[0]["reason"]


def test_a_filename_cannot_make_the_loader_read_outside_the_data_root(tmp_path, template):
    root = tmp_path / "data" / "Cropped"
    write_frames(root / "sub01" / "EP01", range(1, 6), lambda n: f"reg_img{n}", template)
    # Real frames outside the root, where the hostile names below point.
    for outside in (tmp_path / "data" / "secret", tmp_path / "secret", root / "sub01" / "x"):
        write_frames(outside, range(1, 6), lambda n: f"reg_img{n}", template)
    (root / "sub01" / "link").symlink_to(tmp_path / "secret")
    hostile = ["../../secret", "../../../secret", "x/../../../secret", "/etc", "..", "link"]
    annotations = casme2_csv(
        tmp_path / "a.csv",
        [("01", "EP01", 1, 3, 5, "others")]
        + [("01", name, 1, 3, 5, "others") for name in hostile]
        + [("01/../..", "secret", 1, 3, 5, "others")],
    )
    result = datasets.load_casme2(annotations, root)
    assert list(result.samples["sample"]) == ["sub01_EP01"]
    assert len(result.skipped) == len(hostile) + 1
    assert all("data root" in s["reason"] and s["kind"] == "path" for s in result.skipped)


def test_table_loader_applies_the_apex_policy(tmp_path, template):
    write_frames(tmp_path / "s1" / "v1", range(10, 21), lambda n: f"img{n}", template)
    table = tmp_path / "a.tsv"
    table.write_text("subject\tvideo\tonset\tapex\toffset\tlabel\ns1\tv1\t10\t\t20\tHappy\n")
    kept = samples.load_table(table, tmp_path, ["happy", "sad"], "t", fps=100)
    assert kept.samples.iloc[0].apex == 15 and "midpoint" in kept.notes[0]
    dropped = samples.load_table(table, tmp_path, ["happy", "sad"], "t", fps=100, apex_fill="drop")
    assert dropped.samples.empty and dropped.skipped[0]["kind"] == "apex missing"


def test_unreadable_or_incomplete_sheets_are_errors_that_name_the_file(tmp_path):
    broken = tmp_path / "CASME2-coding-broken.xlsx"
    broken.write_bytes(b"not a spreadsheet")
    with pytest.raises(frames.DataError, match="CASME2-coding-broken.xlsx"):
        datasets.load_casme2(broken, tmp_path)
    no_apex = tmp_path / "no_apex.csv"
    no_apex.write_text("Subject,Filename,OnsetFrame,OffsetFrame,Estimated Emotion\n01,EP1,1,2,x\n")
    with pytest.raises(frames.DataError, match="apex"):
        datasets.load_casme2(no_apex, tmp_path)
    with pytest.raises(frames.DataError, match="does not exist"):
        datasets.load_samm(tmp_path / "absent.xlsx", tmp_path)


def test_official_annotation_file_is_found_beside_the_frames(tmp_path):
    (tmp_path / "Cropped").mkdir()
    for name in ("CASME2-coding-20140508.xlsx", "CASME2-coding-20190701.xlsx", "notes.txt"):
        (tmp_path / name).touch()
    found = datasets.find_annotations("casme2", tmp_path / "Cropped")
    assert found.name == "CASME2-coding-20190701.xlsx"
    with pytest.raises(frames.DataError, match="--annotations"):
        datasets.find_annotations("samm", tmp_path / "Cropped")


def mer(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mer", *args], capture_output=True, text=True, cwd=REPO
    )


@needs_casme2
def test_check_data_reports_counts_and_problems_and_fails_only_when_fatal(casme2_tree, tmp_path):
    ok = mer("check-data", "--dataset", "casme2", "--root", str(casme2_tree),
             "--annotations", str(CASME2_SHEET), "--apex-fill", "drop")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "245 usable, 10 skipped" in ok.stdout
    assert "disgust" in ok.stdout and "apex_fill: midpoint" in ok.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = mer("check-data", "--dataset", "casme2", "--root", str(empty),
                  "--annotations", str(CASME2_SHEET))  # fmt: skip
    assert nothing.returncode == 1 and "dataset.root" in nothing.stdout
    unreadable = mer("check-data", "--dataset", "samm", "--root", str(empty),
                     "--annotations", str(tmp_path / "absent.xlsx"))  # fmt: skip
    assert unreadable.returncode == 2 and "absent.xlsx" in unreadable.stderr
    config = yaml.safe_load((REPO / "workflow" / "configs" / "casme2.yaml").read_text())
    config["dataset"].update(root=str(casme2_tree), annotations=str(CASME2_SHEET))
    (tmp_path / "casme2.yaml").write_text(yaml.safe_dump(config))
    from_config = mer("check-data", "--configfile", str(tmp_path / "casme2.yaml"))
    assert from_config.returncode == 0 and "246 usable, 9 skipped" in from_config.stdout


def example_config(name: str, **dataset) -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    override = yaml.safe_load((REPO / "workflow" / "configs" / f"{name}.yaml").read_text())
    config["dataset"].update(override["dataset"], **dataset)  # as Snakemake merges them
    return config


@pytest.mark.parametrize("name", ["casme2", "samm", "smic", "megc2019"])
def test_example_configs_are_valid_over_the_default(name):
    config = example_config(name)
    validate(config, SCHEMA)
    assert config["dataset"]["loader"] == name


@pytest.mark.parametrize(
    "change, named",
    [
        ({"apex_fill": "mid"}, ["apex_fill", "midpoint", "drop"]),
        ({"layout": "registered"}, ["layout", "cropped", "raw"]),
        ({"crop": {"enabled": "yes"}}, ["enabled", "auto"]),
        ({"crop": {"size": 8}}, ["size", "minimum"]),
    ],
)
def test_schema_names_the_bad_dataset_key(change, named):
    config = example_config("casme2", **change)
    with pytest.raises(WorkflowError) as error:
        validate(config, SCHEMA)
    for word in named:
        assert word in str(error.value)


def test_schema_needs_root_and_annotations_for_a_real_dataset():
    config = example_config("samm")
    del config["dataset"]["root"]
    with pytest.raises(WorkflowError, match="root"):
        validate(config, SCHEMA)


@needs_casme2
@needs_samm
@pytest.mark.slow
def test_samples_rule_reads_casme2_and_samm_trees_end_to_end(workdir, casme2_tree, samm_tree):
    for name, root, sheet, usable in (
        ("casme2", casme2_tree, CASME2_SHEET, 246),
        ("samm", samm_tree, SAMM_SHEET, 134),
    ):
        override = yaml.safe_load((REPO / "workflow" / "configs" / f"{name}.yaml").read_text())
        override["dataset"].update(root=str(root), annotations=str(sheet))
        (workdir / f"{name}.yaml").write_text(yaml.safe_dump(override))
        run_snakemake(
            workdir, f"results/{name}/samples.tsv", "--cores", "1", "--configfile", f"{name}.yaml"
        )
        table = samples.read_samples(workdir / "results" / name / "samples.tsv")
        assert len(table) == usable and table.subject.str.len().eq(len(table.subject[0])).all()
        assert set(table.label) <= set(override["dataset"]["classes"])
        report = (workdir / "results" / name / "samples_report.md").read_text()
        assert f"{usable} usable" in report
        assert name == "casme2" or "028_4_1: apex 1143 is not within" in report
