import cv2
import numpy as np
import pytest

from mer.data import clips
from mer.data.frames import DataError


def write_frames(folder, numbers, size=(12, 10)):
    folder.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        cv2.imwrite(str(folder / f"img{n}.png"), np.full(size, n, np.uint8))


def test_clip_holds_onset_to_offset_in_frame_number_order(tmp_path):
    write_frames(tmp_path, range(95, 106))
    clip = clips.load_clip(tmp_path, 98, 102)
    assert clip.shape == (5, 12, 10)
    assert clip[:, 0, 0].tolist() == [98, 99, 100, 101, 102]


def test_resize_gives_the_working_size(tmp_path):
    write_frames(tmp_path, range(1, 5), size=(40, 30))
    assert clips.resize_clip(clips.load_clip(tmp_path, 1, 4), 16).shape == (4, 16, 16)


def test_missing_frame_is_an_error_naming_the_folder(tmp_path):
    write_frames(tmp_path, [1, 2, 4])
    with pytest.raises(DataError, match=f"{tmp_path}.*3"):
        clips.load_clip(tmp_path, 1, 4)


@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_damaged_frame_is_an_error_naming_the_file(tmp_path, damage):
    write_frames(tmp_path, [1, 2, 3])
    frame = tmp_path / "img2.png"
    frame.write_bytes(b"" if damage == "empty" else frame.read_bytes()[:20])
    with pytest.raises(DataError, match="img2.png"):
        clips.load_clip(tmp_path, 1, 3)


def test_frames_of_different_sizes_are_an_error(tmp_path):
    write_frames(tmp_path, [1, 2])
    write_frames(tmp_path, [3], size=(8, 8))
    with pytest.raises(DataError, match="differ in size"):
        clips.load_clip(tmp_path, 1, 3)
