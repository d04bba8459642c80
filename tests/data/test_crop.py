"""Face crop: one square box per clip from the onset frame; centre crop + warning without a face.

The Haar cascade finds the synthetic face of mer.data.synth_faces.render_face (measured with
face_box: 99 of 100 faces, 10 subjects at 48-256 px, bare or on a larger canvas). The OpenCV 5
wheels ship no cascade file, so the detection tests skip there unless one is installed (see
mer.data.crop.find_cascade); the geometry and the no-face fallback are tested everywhere.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mer.data import crop, synth_faces
from mer.data.frames import DataError

CASCADE = crop.find_cascade()
needs_cascade = pytest.mark.skipif(
    CASCADE is None,
    reason="no Haar cascade in this OpenCV install (OpenCV 5 wheels ship none); set "
    "MER_HAAR_CASCADE or install opencv-contrib-python-headless<5 or Debian's opencv-data",
)


def face_on_canvas(size=96, top=40, left=150, canvas=(200, 340), seed=1):
    """A synthetic face of side `size` pasted at (top, left) on a darker, larger frame."""
    rng = np.random.default_rng(seed)
    face = synth_faces.render_face(synth_faces._face_geometry(rng), size, rng)
    frame = np.full(canvas, 50, np.uint8)
    frame[top : top + size, left : left + size] = np.clip(face, 0, 255).astype(np.uint8)
    return frame


@needs_cascade
def test_the_haar_cascade_finds_an_off_centre_face_and_the_box_covers_it():
    size, top, left = 96, 40, 150
    frame = face_on_canvas(size, top, left)
    x, y, w, h = crop.face_box(frame, margin=0.1)
    assert w == h and 0.9 * size <= w <= 1.5 * size
    assert x <= left + size * 0.15 and x + w >= left + size * 0.85  # the face is inside
    assert y <= top + size * 0.15 and y + h >= top + size * 0.85
    assert 0 <= x and x + w <= frame.shape[1] and 0 <= y and y + h <= frame.shape[0]
    wider = crop.face_box(frame, margin=0.3)
    assert wider[2] > w


@needs_cascade
def test_a_frame_without_a_face_gets_the_centre_crop_and_a_warning_naming_the_sample():
    frame = np.random.default_rng(0).integers(0, 255, (120, 200), dtype=np.uint8)
    box, warning = crop.clip_box(frame, sample="006_1_2")
    assert box == (40, 0, 120, 120)
    assert "006_1_2" in warning and "no face" in warning


def test_the_fallback_does_not_need_a_detector(monkeypatch, caplog):
    monkeypatch.setattr(crop, "face_box", lambda *args, **kwargs: None)
    box, warning = crop.clip_box(np.zeros((480, 640), np.uint8), sample="sub01_EP02_01f")
    assert box == (80, 0, 480, 480)
    assert "sub01_EP02_01f" in warning and "centre crop" in warning
    assert "sub01_EP02_01f" in caplog.text


def test_a_missing_cascade_is_an_error_that_says_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.setattr(crop, "find_cascade", lambda path=None: None)
    with pytest.raises(DataError, match="opencv-data.*crop.enabled: false"):
        crop.face_box(np.zeros((64, 64), np.uint8))
    monkeypatch.undo()
    with pytest.raises(DataError, match="absent.xml"):
        crop.find_cascade(tmp_path / "absent.xml")


def test_every_frame_is_cut_by_the_same_box_and_resized():
    frames = np.zeros((5, 60, 80), np.uint8)
    frames[:, 10:40, 30:60] = np.arange(5, dtype=np.uint8)[:, None, None] * 40 + 20
    cropped = crop.crop_clip(frames, (30, 10, 30, 30), size=16)
    assert cropped.shape == (5, 16, 16) and cropped.dtype == np.uint8
    assert [set(np.unique(f)) for f in cropped] == [{20 + 40 * t} for t in range(5)]
    colour = crop.crop_clip(np.zeros((2, 60, 80, 3), np.uint8), (0, 0, 8, 8), size=32)
    assert colour.shape == (2, 32, 32, 3)
    with pytest.raises(ValueError, match="inside"):
        crop.crop_clip(frames, (70, 0, 20, 20), size=16)


@given(
    height=st.integers(8, 500),
    width=st.integers(8, 500),
    fraction=st.floats(0.1, 2.0),
)
def test_centre_box_is_a_centred_square_inside_the_frame(height, width, fraction):
    x, y, w, h = crop.centre_box((height, width), fraction)
    assert w == h == round(min(height, width, min(height, width) * fraction))
    assert 0 <= x <= width - w and 0 <= y <= height - h
    assert abs((x + w / 2) - width / 2) <= 1 and abs((y + h / 2) - height / 2) <= 1


@pytest.mark.parametrize(
    "setting, loader, layout, enabled",
    [
        ("auto", "samm", "cropped", True),
        ("auto", "casme2", "raw", True),
        ("auto", "casme2", "cropped", False),
        ("auto", "synthetic", "cropped", False),
        ("auto", "table", "cropped", False),
        (True, "casme2", "cropped", True),
        (False, "samm", "cropped", False),
    ],
)
def test_crop_is_on_by_default_only_for_uncropped_datasets(setting, loader, layout, enabled):
    assert crop.crop_enabled(setting, loader, layout) is enabled
