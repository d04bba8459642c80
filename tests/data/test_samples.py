from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from mer.data import frames, samples

CLASSES = ["others", "disgust", "happiness", "repression", "surprise"]


def make_clip(folder: Path, numbers, name=lambda n: f"img{n}.png"):
    folder.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        cv2.imwrite(str(folder / name(n)), np.full((8, 8), n % 255, np.uint8))


@pytest.mark.parametrize(
    "name, number",
    [
        ("img46.jpg", 46),
        ("reg_img46.jpg", 46),
        ("006_05562.jpg", 5562),
        ("006_5562.jpg", 5562),
        ("s3_po_05_0012.bmp", 12),
        ("frame.png", None),
    ],
)
def test_frame_number_is_the_last_integer_of_the_name(name, number):
    assert frames.frame_number(name) == number


def test_frames_sort_numerically_not_by_name(tmp_path):
    make_clip(tmp_path, [99, 100, 460, 46])
    assert list(frames.list_frames(tmp_path)) == [46, 99, 100, 460]


def test_two_files_with_one_frame_number_are_an_error_naming_both(tmp_path):
    make_clip(tmp_path, [5], name=lambda n: f"img{n}.png")
    make_clip(tmp_path, [5], name=lambda n: f"img{n:03d}.png")
    with pytest.raises(frames.DataError, match="img005.png"):
        frames.list_frames(tmp_path)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Others", "others"),
        ("other", "others"),
        (" Happiness ", "happiness"),
        ("SURPRISE", "surprise"),
        ("fear", None),
    ],
)
def test_labels_match_ignoring_case_and_plural(raw, expected):
    assert samples.normalise_label(raw, CLASSES) == expected


def test_bad_rows_are_skipped_with_a_reason_and_good_rows_kept(tmp_path):
    make_clip(tmp_path / "s1" / "good", range(10, 21))
    make_clip(tmp_path / "s1" / "gap", [10, 11, 13, 14])
    make_clip(tmp_path / "s1" / "late", range(10, 21))
    rows = pd.DataFrame(
        [
            ("s1", "good", 10, 14, 20, "Disgust"),
            ("s1", "gap", 10, 11, 14, "others"),
            ("s1", "late", 10, 25, 20, "others"),
            ("s1", "good2", 10, 12, 14, "fear"),
            ("s1", "absent", 10, 12, 14, "others"),
            ("s1", "good", "x", 12, 14, "others"),
            ("s1", "../../etc", 1, 2, 3, "others"),
        ],
        columns=["subject", "video", "onset", "apex", "offset", "label"],
    ).assign(fps=200)
    result = samples.build_samples(rows, tmp_path, CLASSES, "test")
    assert list(result.samples["sample"]) == ["s1_good"]
    assert result.samples.iloc[0]["label"] == "disgust"
    reasons = {s["sample"]: s["reason"] for s in result.skipped}
    assert "12" in reasons["s1_gap"] and "missing" in reasons["s1_gap"]
    assert "not within" in reasons["s1_late"]
    assert "fear" in reasons["s1_good2"]
    assert "does not exist" in reasons["s1_absent"]
    assert "../../etc" in reasons["s1_../../etc"] and "data root" in reasons["s1_../../etc"]
    assert len(result.skipped) == 6
    report = samples.summary(result, CLASSES)
    assert "1 usable, 6 skipped" in report and "s1_gap" in report


def test_missing_annotation_column_is_a_clear_error(tmp_path):
    table = tmp_path / "a.csv"
    table.write_text("subject,video,onset,offset,label\n")
    with pytest.raises(frames.DataError, match=r"a\.csv.*apex"):
        samples.load_table(table, tmp_path, CLASSES, "t", fps=200)
