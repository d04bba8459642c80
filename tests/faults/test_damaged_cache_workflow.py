"""Whole workflow: a flow artifact of a finished run truncated outside mer is listed by
`mer check-results` with the command that redoes it; that command gives the same predictions
and metrics as the undisturbed run (compared by content)."""

import os
import shlex
import subprocess
import sys

import pytest

from conftest import REPO, run_snakemake

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def contents(workdir, pattern: str) -> dict:
    return {p.relative_to(workdir): p.read_bytes() for p in sorted(workdir.glob(pattern))}


def test_a_truncated_flow_artifact_is_listed_and_its_fix_restores_the_results(completed_tiny_run):
    workdir, _ = completed_tiny_run
    data_dir = workdir / "results/synthetic"
    predictions = contents(workdir, "results/synthetic/train/*/seed*/*/predictions.csv")
    metrics = contents(workdir, "results/synthetic/evaluation/*/metrics.json")
    flow = sorted(data_dir.glob("flow/*/*.npz"))[0]
    flow.write_bytes(flow.read_bytes()[:100])

    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    # Run where snakemake runs, as a user would: the fix's paths are then the workflow's own.
    check = subprocess.run([sys.executable, "-m", "mer", "check-results", "results/synthetic"],
                           capture_output=True, text=True, env=env, cwd=workdir)  # fmt: skip
    assert check.returncode == 1, check.stdout
    listed = check.stdout.splitlines()
    assert listed[0].startswith(f"{flow.relative_to(workdir)}: BadZipFile: ")
    assert listed[-1].endswith(": 1 unreadable or left over")
    fix = listed[1].removeprefix("  fix: rerun the job that makes it: ").split(" (")[0]
    command = shlex.split(fix)
    assert command[:4] == ["snakemake", "--cores", "all", "--forcerun"]
    run_snakemake(workdir, "--cores", "2", "--forcerun", *command[4:])

    assert flow.stat().st_size > 100
    assert contents(workdir, "results/synthetic/train/*/seed*/*/predictions.csv") == predictions
    assert contents(workdir, "results/synthetic/evaluation/*/metrics.json") == metrics
    again = subprocess.run([sys.executable, "-m", "mer", "check-results", "results/synthetic"],
                           capture_output=True, text=True, env=env, cwd=workdir)  # fmt: skip
    assert again.returncode == 0, again.stdout
