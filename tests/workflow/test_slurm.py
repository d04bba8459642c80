"""The tiny configuration submitted to a real single-node SLURM (.ci/slurm-up), with the
profile's own thread settings, gives the same predictions and metrics as a local run. Skips
where SLURM cannot be started (not root, no apt)."""

import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from conftest import REPO, make_tiny

pytestmark = [pytest.mark.slow, pytest.mark.slurm, pytest.mark.timeout(900)]
STATE = "/tmp/mer-slurm-test"
# Below the test's timeout, so that teardown (scancel, daemons stopped) always runs.
SLURM_RUN_LIMIT_S = 600


def slurm_at(state: str):
    """A single-node SLURM with its state under `state`, stopped afterwards; skips where it
    cannot be started. Each test module uses its own state folder."""
    if shutil.which("sbatch") is None and (os.geteuid() != 0 or shutil.which("apt-get") is None):
        pytest.skip("no SLURM here and no root apt-get to install one")
    started = subprocess.run(
        [str(REPO / ".ci" / "slurm-up"), state], capture_output=True, text=True, timeout=300
    )
    try:
        if started.returncode != 0:
            pytest.skip(f"SLURM could not be started: {started.stderr.strip()}")
        yield state
    finally:
        subprocess.run([str(REPO / ".ci" / "slurm-down"), state], capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def slurm_cluster():
    yield from slurm_at(STATE)


def tiny_workdir(path):
    path.mkdir()
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["experiments"] = {"mscnn": {}}  # one experiment: the wiring, in fewer jobs
    (path / "config.yaml").write_text(yaml.safe_dump(make_tiny(config)))
    return path


def outputs(workdir, name):
    """Every `name` file under results/, keyed by its path relative to workdir."""
    return {p.relative_to(workdir): p for p in sorted((workdir / "results").rglob(name))}


def test_tiny_run_on_slurm_matches_the_local_run(slurm_cluster, completed_tiny_run, tmp_path):
    # The local run is the shared tiny run (all experiments): its mscnn artifacts carry the
    # same keys as this mscnn-only config's, so every cluster output has a local twin.
    local, _ = completed_tiny_run
    cluster = tiny_workdir(tmp_path / "cluster")

    command = [
        "timeout", "-k", "20", str(SLURM_RUN_LIMIT_S),
        sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(cluster),
        "--profile", str(REPO / "profiles" / "slurm-ci"),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=cluster)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-5000:]
    # The per-fold and per-sample jobs really went through sbatch (the plugin deletes the logs
    # of successful jobs, so read its submission lines).
    submitted = [line for line in log.splitlines() if "submitted with SLURM jobid" in line]
    assert any("rule_train" in line for line in submitted), log[-3000:]
    # All subjects' preprocessing chains went as one group submission (profiles/slurm-ci
    # group-components).
    assert sum("group_preprocess" in line for line in submitted) == 1, submitted
    # The profile gives a fold 2 threads, the local run 1: portable mode must not care.
    train_jobs = [block.split("\n\n")[0] for block in log.split("rule train:")[1:]]
    assert train_jobs and all("threads: 2" in job for job in train_jobs), train_jobs[:1]

    predictions = outputs(cluster, "predictions.csv")
    assert len(predictions) >= 2
    assert predictions.keys() <= outputs(local, "predictions.csv").keys()
    for relative in predictions:
        pd.testing.assert_frame_equal(
            pd.read_csv(local / relative), pd.read_csv(cluster / relative), obj=str(relative)
        )
    metrics = outputs(cluster, "metrics.json")
    assert metrics and metrics.keys() <= outputs(local, "metrics.json").keys()
    for relative in metrics:
        assert (local / relative).read_text() == (cluster / relative).read_text(), relative
    assert (cluster / "results/synthetic/report.html").stat().st_size > 10_000
