"""Bad input: each fault is named (sample, file, reason) and spares the other samples.

Faults in annotations and frames are caught by the samples stage, before any per-sample job
exists: `on_bad_sample: skip` leaves the row out of samples.tsv and lists it in the report,
`fail` stops with the same message. A non-finite flow field stops its flow/masks job.
"""

import hashlib
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, run_snakemake
from mer import cli
from mer.data import frames, samples, synth
from mer.preprocess import flow
from mer.store import files

# Frames written as PNG: the corruptions below name and rewrite .png files.
TINY = dict(
    seed=3, subjects=3, clips_per_subject=2, frame_size=48, frames_min=20, frames_max=28,
    image_format="png",
)  # fmt: skip
CLASSES = ["others", "disgust", "happiness", "repression", "surprise"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    """The tiny synthetic dataset, rendered once; tests corrupt copies of it."""
    out = tmp_path_factory.mktemp("tiny") / "dataset"
    synth.write_dataset(synth.SynthParams(**TINY), out)
    return out


@pytest.fixture
def dataset(rendered, tmp_path) -> Path:
    copy = tmp_path / "dataset"
    shutil.copytree(rendered, copy)
    return copy


def annotations(dataset: Path) -> pd.DataFrame:
    return pd.read_csv(dataset / "annotations.csv", dtype=str, keep_default_na=False)


def frame_path(dataset: Path, row: pd.Series, number: int) -> Path:
    return dataset / "frames" / row["subject"] / row["video"] / f"img{number}.png"


def run_samples(dataset: Path, on_bad_sample: str = "skip") -> tuple[int, pd.DataFrame | None]:
    out = dataset / "samples.tsv"
    rc = cli.main(
        [
            "samples",
            "--loader=table",
            f"--root={dataset / 'frames'}",
            f"--annotations={dataset / 'annotations.csv'}",
            f"--classes={','.join(CLASSES)}",
            "--dataset=tiny",
            f"--on-bad-sample={on_bad_sample}",
            f"--out={out}",
            f"--report={dataset / 'samples_report.md'}",
        ]
    )
    return rc, samples.read_samples(out) if rc == 0 else None


def row_hashes(table: pd.DataFrame, root: Path) -> dict[str, str]:
    """sample -> hash of its samples.tsv row, frames_dir relative to the data root."""
    table = table.assign(frames_dir=[str(Path(d).relative_to(root)) for d in table.frames_dir])
    return {
        row["sample"]: hashlib.sha256(row.to_json().encode()).hexdigest()
        for _, row in table.iterrows()
    }


@pytest.fixture(scope="module")
def clean_rows(rendered, tmp_path_factory) -> dict[str, str]:
    copy = tmp_path_factory.mktemp("clean") / "dataset"
    shutil.copytree(rendered, copy)
    rc, table = run_samples(copy)
    assert rc == 0 and len(table) == len(annotations(copy))
    return row_hashes(table, copy / "frames")


def corrupt_frame(how: str):
    """A fault in the apex frame of a clip; returns (file, reason) to look for."""

    def fault(dataset: Path, row: pd.Series):
        path = frame_path(dataset, row, int(row["apex"]))
        if how == "zero-byte":
            path.write_bytes(b"")
            return path, "empty (0 bytes)"
        if how == "truncated":
            path.write_bytes(path.read_bytes()[:200])
            return path, "cannot be decoded"
        if how == "corrupt":
            path.write_bytes(b"this is not an image" * 20)
            return path, "cannot be decoded"
        if how == "missing":
            path.unlink()
            return path, "missing"
        if how == "mixed size":
            cv2.imwrite(str(path), np.zeros((40, 44), np.uint8))
            return path, "differ in size"
        raise AssertionError(how)

    return fault


def annotate(**cells):
    def fault(dataset: Path, row: pd.Series):
        table = annotations(dataset)
        index = table.index[(table.subject == row.subject) & (table.video == row.video)][0]
        for column, value in cells.items():
            value = value(row) if callable(value) else value
            table.loc[index, column] = value
        table.to_csv(dataset / "annotations.csv", index=False)
        return dataset / "annotations.csv", None

    return fault


FAULTS = {
    "zero-byte frame": (corrupt_frame("zero-byte"), "empty (0 bytes)"),
    "truncated frame": (corrupt_frame("truncated"), "cannot be decoded"),
    "corrupt frame": (corrupt_frame("corrupt"), "cannot be decoded"),
    "missing frame": (corrupt_frame("missing"), "missing"),
    "mixed frame sizes": (corrupt_frame("mixed size"), "differ in size"),
    "clip too short": (
        annotate(offset=lambda r: str(int(r.onset) + 2), apex=lambda r: str(int(r.onset) + 1)),
        "EVM temporal filter needs at least 4",
    ),
    "non-numeric frame": (annotate(onset="12a"), "not all frame numbers"),
    "unknown label": (annotate(label="smirk"), "'smirk' is not one of the configured classes"),
    "onset after offset": (
        annotate(onset=lambda r: str(int(r.offset) + 5)),
        "is after offset",
    ),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_bad_sample_is_skipped_named_in_the_report_and_the_others_are_unchanged(
    dataset, clean_rows, fault
):
    make_fault, reason = FAULTS[fault]
    victim = annotations(dataset).iloc[1]
    sample = f"{victim.subject}_{victim.video}"
    bad_file, _ = make_fault(dataset, victim)

    rc, table = run_samples(dataset)

    assert rc == 0
    assert sample not in set(table["sample"])
    report = (dataset / "samples_report.md").read_text()
    listed = [line for line in report.splitlines() if line.startswith(f"- {sample}:")]
    assert len(listed) == 1 and reason in listed[0]
    if bad_file.suffix == ".png":  # a frame fault names the frame's file (or its folder)
        assert bad_file.name in listed[0] or str(bad_file.parent) in listed[0]
    others = {s: h for s, h in clean_rows.items() if s != sample}
    assert row_hashes(table, dataset / "frames") == others


@pytest.mark.parametrize("fault", ["zero-byte frame", "onset after offset", "mixed frame sizes"])
def test_on_bad_sample_fail_stops_naming_the_sample_and_reason(dataset, capsys, fault):
    make_fault, reason = FAULTS[fault]
    victim = annotations(dataset).iloc[0]
    make_fault(dataset, victim)

    rc, _ = run_samples(dataset, on_bad_sample="fail")

    error = capsys.readouterr().err
    assert rc == 2
    assert f"{victim.subject}_{victim.video}" in error and reason in error
    assert "on_bad_sample: skip" in error
    assert not (dataset / "samples.tsv").exists()


def test_a_label_outside_the_classes_is_a_choice_not_a_fault_under_fail(dataset):
    annotate(label="fear")(dataset, annotations(dataset).iloc[0])
    rc, table = run_samples(dataset, on_bad_sample="fail")
    assert rc == 0 and len(table) == len(annotations(dataset)) - 1


@pytest.mark.parametrize("kept", [0.5, 0.95])
def test_a_truncated_jpeg_is_named(tmp_path, kept):
    image = np.random.default_rng(0).integers(0, 255, (64, 48), dtype=np.uint8)
    encoded = cv2.imencode(".jpg", image)[1].tobytes()
    whole, truncated = tmp_path / "img1.jpg", tmp_path / "img2.jpg"
    whole.write_bytes(encoded)
    truncated.write_bytes(encoded[: int(len(encoded) * kept)])
    assert frames.frame_size(whole) == (64, 48)
    with pytest.raises(frames.DataError, match=r"img2\.jpg .*truncated"):
        frames.frame_size(truncated)


def test_evm_job_names_the_clip_too_short_for_the_band(tmp_path, capsys):
    # 6 frames at 200 fps: FFT bins 33 Hz apart, none in 0.5..20 Hz (the samples stage only
    # knows the filter's band-independent minimum of 4 frames).
    clip_dir, out = tmp_path / "sub01" / "clip03", tmp_path / "evm.npz"
    clip_dir.mkdir(parents=True)
    for n in range(10, 16):
        cv2.imwrite(str(clip_dir / f"img{n}.png"), np.full((32, 32), n, np.uint8))
    rc = cli.main(
        [
            "evm", str(clip_dir), str(out), "--onset=10", "--apex=12", "--offset=15",
            "--fps=200", "--low-hz=0.5", "--high-hz=20",
        ]
    )  # fmt: skip
    error = capsys.readouterr().err
    assert rc == 2 and "sub01/clip03" in error and "no FFT bin" in error
    assert not out.exists()


def nan_flow(onset, apex, params):
    flow_uv = np.zeros(onset.shape + (2,), np.float32)
    flow_uv[3, 4] = np.nan
    return flow_uv


def test_flow_never_returns_a_non_finite_field(monkeypatch):
    monkeypatch.setitem(flow._FLOW_BY_METHOD, "farneback", nan_flow)
    onset = np.zeros((16, 16), np.uint8)
    with pytest.raises(ValueError, match="2 NaN or infinite"):
        flow.onset_apex_flow(onset, onset, method="farneback")


def test_flow_job_names_the_sample_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(flow._FLOW_BY_METHOD, "farneback", nan_flow)
    evm_npz, out = tmp_path / "evm" / "sub01_clip02.npz", tmp_path / "flow.npz"
    evm_npz.parent.mkdir()
    frame = np.zeros((16, 16), np.float32)
    files.save_npz(evm_npz, onset_magnified=frame, apex_magnified=frame)
    rc = cli.main(["flow", str(evm_npz), str(out), "--method", "farneback"])
    error = capsys.readouterr().err
    assert rc == 2 and "sub01_clip02.npz" in error and "NaN or infinite" in error
    assert not out.exists()


def test_masks_job_refuses_a_non_finite_flow_file_naming_it(tmp_path, capsys):
    gray = np.zeros((16, 16), np.uint8)
    evm_npz, flow_npz = tmp_path / "evm.npz", tmp_path / "sub02_clip01.npz"
    files.save_npz(evm_npz, onset_gray=gray, apex_gray=gray, apex_magnified=gray * 1.0)
    flow_uv = np.zeros((16, 16, 2), np.float32)
    flow_uv[0, 0, 1] = np.inf
    files.save_npz(flow_npz, flow_uv=flow_uv)
    out = tmp_path / "masks.npz"
    rc = cli.main(["masks", str(evm_npz), str(flow_npz), str(out), "--preview", "p.png"])
    error = capsys.readouterr().err
    assert rc == 2 and "sub02_clip01.npz" in error and "NaN or inf" in error
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("on_bad_sample", ["skip", "fail"])
def test_workflow_lists_or_stops_on_a_bad_frame(dataset, tmp_path, on_bad_sample):
    victim = annotations(dataset).iloc[2]
    corrupt_frame("zero-byte")(dataset, victim)
    sample = f"{victim.subject}_{victim.video}"
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["on_bad_sample"] = on_bad_sample
    config["dataset"].update(
        name="tiny",
        loader="table",
        root=str(dataset / "frames"),
        annotations=str(dataset / "annotations.csv"),
    )
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))

    result = run_snakemake(workdir, "results/tiny/samples.tsv", "--cores", "1", check=False)

    tsv = workdir / "results/tiny/samples.tsv"
    if on_bad_sample == "fail":
        assert result.returncode != 0 and not tsv.exists()
        log = (workdir / "results/tiny/logs/samples.log").read_text()
        assert sample in log and "empty (0 bytes)" in log
    else:
        assert result.returncode == 0
        assert sample not in set(samples.read_samples(tsv)["sample"])
        report = (workdir / "results/tiny/samples_report.md").read_text()
        assert f"- {sample}: frame " in report and "empty (0 bytes)" in report
