"""Determinism on CPU: two workflow runs of the tiny config with one seed give identical
predictions and metrics; another training seed gives different ones."""

import pytest
import yaml

from conftest import REPO, make_tiny, run_snakemake

pytestmark = pytest.mark.slow


def mscnn_results(workdir, seed):
    """metrics.json and every fold's predictions of the mscnn experiment, for one seed."""
    data_dir = workdir / "results" / "synthetic"
    (fold,) = {p.parents[2] for p in data_dir.glob("train/mscnn-*/seed*/*/predictions.csv")}
    metrics = (data_dir / "evaluation" / fold.name / "metrics.json").read_text()
    predictions = sorted(fold.glob(f"seed{seed}/*/predictions.csv"))
    assert len(predictions) == 2  # 2 tiny subjects, one fold each
    return metrics, [p.read_text() for p in predictions]


def run_tiny(workdir, seed):
    config = make_tiny(yaml.safe_load((REPO / "config.yaml").read_text()))
    config["experiments"] = {"mscnn": {}}
    config["seeds"] = [seed]
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    run_snakemake(workdir, "--cores", "2", "results/synthetic/summary.tsv")
    return mscnn_results(workdir, seed)


def test_same_seed_same_results_other_seed_different(completed_tiny_run, tmp_path):
    # The shared tiny run (all experiments, seed 0) is the first run: its mscnn artifacts
    # carry the same keys as this mscnn-only config's, made by another Snakemake process.
    metrics, predictions = mscnn_results(completed_tiny_run[0], 0)
    assert run_tiny(tmp_path, 0) == (metrics, predictions)
    other_metrics, other_predictions = run_tiny(tmp_path, 1)  # shards reused, training reseeded
    assert other_predictions != predictions
    assert other_metrics != metrics
