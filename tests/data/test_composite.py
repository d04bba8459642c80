"""SMIC-HS loader and the MEGC 2019 composite on fake frame trees built from the real composite
list (combined_3class_gt.csv): small generated images, nine frames per clip."""

import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import balanced_accuracy_score, f1_score

from conftest import REPO, SHARED, run_snakemake
from mer.data import datasets, loaders
from mer.data.frames import DataError
from mer.data.samples import read_samples
from mer.evaluation import evaluate
from mer.evaluation.metrics import per_database
from mer.evaluation.summary import summary

# The composite list holds only ids and labels (as MEGC 2019 published it): vendored, so that
# these tests run in any checkout. The official sheets it is checked against are not.
COMPOSITE = Path(__file__).resolve().parent / "combined_3class_gt.csv"
ANNOTATIONS = SHARED / "realdata" / "annotations"
needs_composite = pytest.mark.skipif(not COMPOSITE.is_file(), reason="tests/data lacks the list")
needs_sheets = pytest.mark.skipif(
    not (ANNOTATIONS / "CASME2-coding-20140508.xlsx").is_file(),
    reason="../shared/realdata (the official CASME II / SAMM sheets) is absent",
)
# Emotion written into the fake CASME II / SAMM sheets for each composite label.
SHEET_EMOTION = {
    "casme2": {"0": "disgust", "1": "happiness", "2": "surprise"},
    "samm": {"0": "Anger", "1": "Happiness", "2": "Surprise"},
}
SMIC_FOLDER = {"0": "negative", "1": "positive", "2": "surprise"}
FIRST, APEX, LAST = 10, 13, 18  # frame numbers of every fake clip


def write_clip(clip_dir: Path, name_of, suffix: str = ".png", rng=None) -> None:
    """Nine 16x16 frames whose change peaks at frame APEX."""
    clip_dir.mkdir(parents=True)
    rng = rng or np.random.default_rng(0)
    face = rng.integers(60, 200, (16, 16)).astype(np.float32)
    for number in range(FIRST, LAST + 1):
        frame = face + 40 * max(0, 1 - abs(number - APEX) / 4) * (np.arange(16) > 7)[None, :]
        cv2.imwrite(
            str(clip_dir / f"{name_of(number)}{suffix}"), frame.clip(0, 255).astype(np.uint8)
        )


def write_fake_trees(root: Path, composite: pd.DataFrame) -> dict:
    """CASME II (Cropped/sub01/EP../reg_img<N>.jpg + a sheet), SAMM (006/006_1_2/006_<N>.jpg +
    a sheet), SMIC-HS (HS/s1/micro/<class>/s1_ne_1/image<N>.bmp, unpadded as on disk)."""
    rows = {"casme2": [], "samm": []}
    for _, row in composite.iterrows():
        database, subject, video, label = (
            row["database"],
            row["subject"],
            row["video"],
            row["label"],
        )
        if database == "casme2":
            write_clip(root / "CASME2/Cropped" / subject / video, lambda n: f"reg_img{n}", ".jpg")
            rows["casme2"].append(
                [subject[3:], video, FIRST, APEX, LAST, SHEET_EMOTION["casme2"][label]]
            )
        elif database == "samm":
            padded = f"{int(subject):03d}"
            write_clip(root / "SAMM" / padded / video, lambda n, p=padded: f"{p}_{n:05d}", ".jpg")
            # As in SAMM v2, 028_4_1's annotated apex lies outside its onset..offset.
            apex = LAST + 9 if video == "028_4_1" else APEX
            rows["samm"].append([padded, video, FIRST, apex, LAST, SHEET_EMOTION["samm"][label]])
        else:
            number, code, k = video.split("_")
            on_disk = f"s{int(number[1:])}"
            clip = f"{on_disk}_{code}_{int(k)}"
            write_clip(
                root / "HS" / on_disk / "micro" / SMIC_FOLDER[label] / clip,
                lambda n: f"image{n:06d}",
                ".bmp",
            )
    header = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Estimated Emotion"]
    sheets = {}
    for database, sheet_rows in rows.items():
        sheets[database] = root / f"{database}_sheet.csv"
        pd.DataFrame(sheet_rows, columns=header).to_csv(sheets[database], index=False)
    return {
        "casme2": {"root": str(root / "CASME2"), "annotations": str(sheets["casme2"])},
        "samm": {"root": str(root / "SAMM"), "annotations": str(sheets["samm"])},
        "smic": {"root": str(root)},
    }


@pytest.fixture(scope="module")
def composite_load(tmp_path_factory):
    composite = loaders.read_composite(COMPOSITE)
    sources = write_fake_trees(tmp_path_factory.mktemp("megc2019"), composite)
    return composite, sources, loaders.load_megc2019(COMPOSITE, sources)


@needs_composite
def test_composite_gives_442_samples_of_68_subjects_with_the_per_database_counts(composite_load):
    _, _, result = composite_load
    samples = result.samples
    assert result.skipped == []
    assert len(samples) == 442
    assert samples.groupby("dataset").size().to_dict() == {"casme2": 145, "smic": 164, "samm": 133}
    assert samples["subject"].nunique() == 68
    assert samples.groupby("dataset")["subject"].nunique().to_dict() == {
        "casme2": 24,
        "smic": 16,
        "samm": 28,
    }
    assert samples["sample"].is_unique
    assert {"casme2_sub01", "smic_s01", "samm_006"} <= set(samples["subject"])


@needs_composite
def test_composite_labels_follow_the_megc2019_convention(composite_load):
    composite, _, result = composite_load
    samples = result.samples.set_index("sample")
    assert samples["label"].value_counts().to_dict() == {
        "negative": 250,
        "positive": 109,
        "surprise": 83,
    }
    # SMIC's clip names carry the class: ne = negative, po = positive, sur = surprise.
    smic = samples[samples["dataset"] == "smic"]
    code = smic["video"].str.split("_").str[1]
    assert (
        code.map({"ne": "negative", "po": "positive", "sur": "surprise"}) == smic["label"]
    ).all()
    assert samples.loc["casme2_sub01_EP02_01f", "label"] == "positive"


@needs_composite
def test_smic_and_the_unreliable_samm_apexes_are_spotted_from_the_frames(composite_load):
    _, _, result = composite_load
    samples = result.samples.set_index("sample")
    smic = samples[samples["dataset"] == "smic"]
    assert (smic["onset"] == FIRST).all() and (smic["offset"] == LAST).all()
    assert (smic["apex"] == APEX).all()  # the frames' change peaks there
    assert (smic["fps"] == 100).all()
    assert samples.loc["samm_028_4_1", "apex"] == APEX  # annotated outside onset..offset
    assert any(
        "028_4_1 (annotated apex 27 outside onset 10 .. offset 18) -> 13" in n for n in result.notes
    )


@needs_composite
def test_composite_loso_never_mixes_a_subject_across_train_and_test(composite_load):
    samples = composite_load[2].samples
    # A subject id names one person of one database: prefixes keep sub01 / s01 / 006 apart.
    assert (samples.groupby("subject")["dataset"].nunique() == 1).all()
    for held_out in samples["subject"].unique():
        test = samples[samples["subject"] == held_out]
        train = samples[samples["subject"] != held_out]
        assert set(test["sample"]).isdisjoint(train["sample"])
        assert held_out not in set(train["subject"])
        assert len(test) + len(train) == 442


@needs_composite
def test_smic_loader_alone_reads_the_tree(composite_load):
    _, sources, _ = composite_load
    result = datasets.load_smic(sources["smic"]["root"], apex_fill="midpoint")
    assert len(result.samples) == 164
    assert result.samples["subject"].nunique() == 16
    assert (result.samples["apex"] == 14).all()  # midpoint of 10..18
    assert result.samples["frames_dir"].str.contains("/HS/s1/micro/").any()


def test_smic_names_that_break_the_layout_are_reported(tmp_path):
    write_clip(tmp_path / "HS/s3/micro/negative/s3_ne_1", lambda n: f"image{n}", ".bmp")
    write_clip(tmp_path / "HS/s3/micro/positive/s3_ne_2", lambda n: f"image{n}", ".bmp")
    result = datasets.load_smic(tmp_path, apex_fill="spot")
    assert list(result.samples["sample"]) == ["s03_ne_01"]
    assert [s["kind"] for s in result.skipped] == ["path"]
    assert "s3_po_<k>" in result.skipped[0]["reason"]
    with pytest.raises(DataError, match="SMIC-HS"):
        datasets.load_smic(tmp_path / "HS/s3")


def test_a_composite_without_a_source_root_names_the_setting(tmp_path):
    table = tmp_path / "composite.csv"
    table.write_text("smic,s01,s01_ne_01,0\n")
    with pytest.raises(DataError, match="sources.smic.root"):
        loaders.load_megc2019(table, {})
    table.write_text("smic,s01,s01_ne_01,3\n")
    with pytest.raises(DataError, match="labels"):
        loaders.load_megc2019(table, {"smic": {"root": str(tmp_path)}})


@needs_sheets
@pytest.mark.parametrize("database", ["casme2", "samm"])
def test_every_composite_row_is_in_the_official_sheet(database):
    sheet = {"casme2": "CASME2-coding-20140508.xlsx", "samm": "SAMM_Micro_FACS_Codes_v2.xlsx"}
    columns = {"subject": ("Subject",), "video": ("Filename",)}
    rows, _ = datasets.read_sheet(ANNOTATIONS / sheet[database], columns, sheet="MICRO_ONLY")
    composite = loaders.read_composite(COMPOSITE)
    wanted = composite[composite["database"] == database]
    assert set(wanted["video"]) <= set(rows["video"])


def test_per_database_scores_match_scikit_learn():
    rng = np.random.default_rng(3)
    classes = ["negative", "positive", "surprise"]
    n = 300
    predictions = pd.DataFrame(
        {
            "seed": 0,
            "sample": [f"c{i}" for i in range(n)],
            "subject": rng.choice(["a", "b", "c", "d"], n),
            "true_label": rng.choice(classes, n, p=[0.6, 0.25, 0.15]),
            "predicted_label": rng.choice(classes, n),
            "dataset": rng.choice(["casme2", "smic", "samm"], n),
        }
    )
    scores = per_database(predictions, classes)
    for database, group in predictions.groupby("dataset"):
        truth, predicted = group["true_label"], group["predicted_label"]
        present = sorted(set(truth))
        assert scores[database]["macro_f1"] == pytest.approx(
            f1_score(truth, predicted, labels=present, average="macro")
        )
        assert scores[database]["uar"] == pytest.approx(balanced_accuracy_score(truth, predicted))
        assert scores[database]["n_samples"] == len(group)


@needs_composite
@pytest.mark.slow
def test_megc2019_config_builds_the_samples_and_a_loso_dag_of_68_folds(workdir, tmp_path):
    composite = loaders.read_composite(COMPOSITE)
    sources = write_fake_trees(tmp_path / "data", composite)
    config = yaml.safe_load((REPO / "workflow/configs/megc2019.yaml").read_text())
    config["dataset"].update(annotations=str(COMPOSITE), sources=sources)
    config["dataset"]["crop"]["enabled"] = False
    (workdir / "megc2019.yaml").write_text(yaml.safe_dump(config))
    run_snakemake(workdir, "results/megc2019/samples.tsv", "--cores", "1",
                  "--configfile", "megc2019.yaml")  # fmt: skip
    table = read_samples(workdir / "results/megc2019/samples.tsv")
    assert table.groupby("dataset").size().to_dict() == {"casme2": 145, "smic": 164, "samm": 133}
    assert (
        "apex spotted from the frames"
        in (workdir / "results/megc2019/samples_report.md").read_text()
    )
    plan = run_snakemake(workdir, "results/megc2019/summary.md", "-n", "--configfile",
                         "megc2019.yaml", "--quiet", "rules")  # fmt: skip
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", plan.stdout, flags=re.MULTILINE))
    n_seeds = len(yaml.safe_load((REPO / "config.yaml").read_text())["seeds"])
    assert int(counts["shards"]) == 68
    assert int(counts["train"]) % 68 == 0 and int(counts["train"]) >= 68 * n_seeds


def test_composite_evaluation_writes_per_database_scores_and_the_published_numbers(tmp_path):
    classes = ["negative", "positive", "surprise"]
    rng = np.random.default_rng(5)
    subjects = {
        "casme2_sub01": "casme2",
        "casme2_sub02": "casme2",
        "smic_s01": "smic",
        "samm_006": "samm",
    }
    databases, seed_dirs = {}, {}
    for seed in (0, 1):
        seed_dirs[seed] = tmp_path / f"seed{seed}"
        for subject, database in subjects.items():
            samples = [f"{subject}_{k}" for k in range(6)]
            databases.update(dict.fromkeys(samples, database))
            fold = seed_dirs[seed] / subject
            fold.mkdir(parents=True)
            pd.DataFrame(
                {
                    "sample": samples,
                    "subject": subject,
                    "true_label": [classes[k % 3] for k in range(6)],
                    "predicted_label": rng.choice(classes, 6),
                }
            ).to_csv(fold / "predictions.csv", index=False)
    metrics = evaluate.evaluate_experiment(
        seed_dirs, classes, tmp_path / "out", "mscnn", list(subjects), databases
    )
    assert sorted(metrics["per_database"]) == ["casme2", "samm", "smic"]
    assert metrics["per_database"]["casme2"]["n_samples"] == 12
    assert metrics["per_database"]["casme2"]["n_folds"] == 2
    uf1 = metrics["per_database"]["smic"]["across_seeds"]["macro_f1"]
    assert uf1["n_seeds"] == 2 and uf1["std"] is not None
    _, markdown = summary({"mscnn": metrics}, "megc2019")
    assert "## Per source database" in markdown and "| mscnn | samm |" in markdown
    assert "| STSTNet | 0.7353 | 0.7605 |" in markdown
    assert "chose their epoch or model on the test subject" in markdown
    assert "ELRCN-TE" not in markdown  # CASME II's 5-class numbers do not belong here
    single = evaluate.evaluate_experiment(
        seed_dirs, classes, tmp_path / "one", "mscnn", list(subjects), dict.fromkeys(databases, "x")
    )
    assert "per_database" not in single  # one database: no breakdown
