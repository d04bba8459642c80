"""A training job killed on a real single-node SLURM (.ci/slurm-up) the way a node failure
kills it is rerun, and the run ends as an undisturbed local run ends.

The tiny config runs with profiles/slurm-ci plus `--retries 1`, the resubmission that
profiles/slurm configures (`retries: 1`), so the rerun is Snakemake's own, within the run, as
on a real cluster. Once a job of rule train is RUNNING and its fold has started training (its
log says so), every process of the job gets SIGKILL (`scancel --signal=KILL --full`): no
handler runs, nothing is cleaned up. That lands mid-training, before the fold writes anything
(the kills during a write are tests/learn/test_interrupt.py's). Skips where SLURM cannot be
started (not root, no apt)."""

import subprocess
import sys
import time

import pandas as pd
import pytest
from test_slurm import outputs, slurm_at, tiny_workdir

from conftest import REPO
from mer.store import check

pytestmark = [pytest.mark.slow, pytest.mark.slurm, pytest.mark.timeout(900)]
STATE = "/tmp/mer-slurm-faults"  # not test_slurm.py's: each module starts and stops its own
# Below the test's timeout, so that teardown (scancel, daemons stopped) always runs.
SLURM_RUN_LIMIT_S = 480
POLL_S = 0.25


@pytest.fixture(scope="module")
def slurm_cluster():
    yield from slurm_at(STATE)


def slurm_jobs() -> dict[str, tuple[str, str]]:
    """SLURM job id -> (state, comment) of every job the controller still knows. The slurm
    executor plugin names a job by the run's id and comments it rule_<rule>_wildcards_<...>."""
    listed = subprocess.run(["squeue", "--noheader", "--states=all", "--format=%i|%T|%k"],
                            capture_output=True, text=True, timeout=30)  # fmt: skip
    rows = (line.split("|", 2) for line in listed.stdout.splitlines() if line.count("|") >= 2)
    return {job_id: (state, comment) for job_id, state, comment in rows}


def fold_logs(workdir) -> dict[str, object]:
    """The SLURM comment of each train job -> its fold's log, logs/train/<key>/seed<s>/<subject>.log
    (the plugin joins the wildcards train_key, seed and subject with '_')."""
    logs = (workdir / "results").glob("*/logs/train/*/seed*/*.log")
    return {
        f"rule_train_wildcards_{log.parent.parent.name}_{log.parent.name[4:]}_{log.stem}": log
        for log in logs
    }


def fold_folder(log):
    """results/<set>/train/<key>/seed<s>/<subject>/ of a fold's log."""
    return log.parents[4] / "train" / log.parent.parent.name / log.parent.name / log.stem


def kill_a_training_job_mid_run(workdir, run: subprocess.Popen) -> tuple[str, str, object]:
    """SIGKILL every process of the first train job once its fold trains: its job id, its
    SLURM comment and its fold's log."""
    deadline = time.monotonic() + SLURM_RUN_LIMIT_S
    while run.poll() is None and time.monotonic() < deadline:
        logs = fold_logs(workdir)
        for job_id, (state, comment) in slurm_jobs().items():
            log = logs.get(comment)
            if state == "RUNNING" and log and "\ncompute: " in log.read_text():
                subprocess.run(["scancel", "--signal=KILL", "--full", job_id], check=True,
                               capture_output=True, timeout=30)  # fmt: skip
                return job_id, comment, log
        time.sleep(POLL_S)
    pytest.fail("no train job was seen training before the run ended")


def wait_until_ended(job_id: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = slurm_jobs().get(job_id, ("GONE", ""))[0]
        if state not in ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING"):
            return state
        time.sleep(POLL_S)
    pytest.fail(f"SLURM job {job_id} still runs 60 s after SIGKILL")


def test_a_killed_training_job_is_rerun_and_matches_the_local_run(
    slurm_cluster, completed_tiny_run, tmp_path
):
    local, _ = completed_tiny_run  # undisturbed; its mscnn artifacts carry the same keys
    cluster = tiny_workdir(tmp_path / "cluster")
    command = [
        "timeout", "-k", "20", str(SLURM_RUN_LIMIT_S),
        sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(cluster),
        "--profile", str(REPO / "profiles" / "slurm-ci"), "--retries", "1",
    ]  # fmt: skip
    with open(tmp_path / "snakemake.log", "w") as log_file:
        run = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, cwd=cluster)
        try:
            killed, comment, fold_log = kill_a_training_job_mid_run(cluster, run)
            killed_state = wait_until_ended(killed)
            fold = fold_folder(fold_log)
            left_by_the_kill = sorted(p.name for p in fold.iterdir()) if fold.exists() else []
            returncode = run.wait(timeout=SLURM_RUN_LIMIT_S + 30)
        finally:
            if run.poll() is None:
                run.kill()
    log = (tmp_path / "snakemake.log").read_text()

    # The kill hit a training job before it finished: it failed, and Snakemake saw it fail.
    assert killed_state in ("FAILED", "CANCELLED"), killed_state
    assert "predictions.csv" not in left_by_the_kill, left_by_the_kill
    assert f"SLURM-job '{killed}' failed" in log, log[-5000:]
    # ... and resubmitted it (the plugin names its SLURM log folder by the wildcards), and
    # the run ended well.
    folder = comment.removeprefix("rule_train_wildcards_")
    submitted = [line for line in log.splitlines() if "submitted with SLURM jobid" in line]
    assert sum(f"rule_train/{folder}/" in line for line in submitted) == 2, submitted
    assert returncode == 0, log[-5000:]

    # The rerun fold and every other output are the undisturbed local run's.
    relative = (fold / "predictions.csv").relative_to(cluster)
    pd.testing.assert_frame_equal(
        pd.read_csv(local / relative), pd.read_csv(cluster / relative), obj=str(relative)
    )
    predictions = outputs(cluster, "predictions.csv")
    assert len(predictions) >= 2 and predictions.keys() <= outputs(local, "predictions.csv").keys()
    for relative in predictions:
        pd.testing.assert_frame_equal(
            pd.read_csv(local / relative), pd.read_csv(cluster / relative), obj=str(relative)
        )
    metrics = outputs(cluster, "metrics.json")
    assert metrics and metrics.keys() <= outputs(local, "metrics.json").keys()
    for relative in metrics:
        assert (local / relative).read_text() == (cluster / relative).read_text(), relative
    # No temp file of an interrupted write is left, and every artifact reads whole.
    results = cluster / "results"
    temp_files = [p for p in results.rglob(".*") if check.TEMP.fullmatch(p.name)]
    assert not temp_files, temp_files
    checked = subprocess.run([sys.executable, "-m", "mer", "check-results", str(results)],
                             capture_output=True, text=True)  # fmt: skip
    assert checked.returncode == 0, checked.stdout[-3000:]
