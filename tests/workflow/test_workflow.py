"""End to end on a tiny synthetic config: the DAG, the lint, and the samples stage."""

import subprocess
import sys

import pandas as pd
import pytest
import yaml

from conftest import REPO, make_tiny, run_snakemake


def tiny_config(workdir):
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    make_tiny(config, subjects=3)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return config


def test_dry_run_lists_the_synthesis_and_samples_jobs(workdir):
    tiny_config(workdir)
    result = run_snakemake(workdir, "-n")
    for rule in ("synth", "samples", "preview_synth"):
        assert rule in result.stdout


def test_lint_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "good condition" in result.stdout + result.stderr


@pytest.mark.slow
def test_default_target_writes_samples_and_preview_then_nothing_to_do(workdir):
    config = tiny_config(workdir)
    targets = ["results/synthetic/samples.tsv", "results/synthetic/preview/synthetic_clips.png"]
    run_snakemake(workdir, *targets, "--cores", "2")
    table = pd.read_csv(workdir / "results/synthetic/samples.tsv", sep="\t")
    assert len(table) >= config["synthetic"]["subjects"]
    assert set(table.label) <= set(config["dataset"]["classes"])
    assert table.subject.nunique() == config["synthetic"]["subjects"]
    assert (workdir / "results/synthetic/preview/synthetic_clips.png").stat().st_size > 1000
    assert "none" in (workdir / "results/synthetic/samples_report.md").read_text()
    again = run_snakemake(workdir, *targets, "-n")
    assert "Nothing to be done" in again.stdout + again.stderr


def test_check_data_summarises_a_table_dataset(tmp_path):
    from mer.data import synth

    params = synth.SynthParams(
        subjects=2, clips_per_subject=2, frame_size=32, frames_min=16, frames_max=20
    )
    synth.write_dataset(params, tmp_path / "d")
    annotations = tmp_path / "d/annotations.csv"
    command = [
        sys.executable, "-m", "mer", "check-data", "--loader", "table",
        "--root", str(tmp_path / "d/frames"), "--annotations", str(annotations),
        "--classes", ",".join(synth.CASME2_PRIORS), "--name", "x",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "usable, 0 skipped" in result.stdout and "sub02" in result.stdout
    assert "faults in the data" not in result.stdout

    # A garbage onset is a fault: listed, and said to stop a run under on_bad_sample: fail.
    header, first, *rest = annotations.read_text().splitlines()
    onset = header.split(",").index("onset")
    first = ",".join("n/a" if i == onset else v for i, v in enumerate(first.split(",")))
    annotations.write_text("\n".join([header, first, *rest]) + "\n")
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "3 usable, 1 skipped" in result.stdout
    assert "1 of the skipped rows are faults in the data" in result.stdout
    assert "on_bad_sample: fail" in result.stdout
