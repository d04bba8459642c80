"""The default target end to end on a tiny config: every comparison row, the summary with the
published numbers, the report; and the named targets resolve."""

import json
import re

import pandas as pd
import pytest
import yaml

from conftest import make_tiny, run_snakemake

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    from conftest import REPO

    workdir = tmp_path_factory.mktemp("full")
    config = make_tiny(yaml.safe_load((REPO / "config.yaml").read_text()), subjects=3)
    config["lbptop"]["size"] = 32
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    run_snakemake(workdir, "--cores", "2")
    return workdir, config


def test_summary_has_one_row_per_experiment_and_the_published_numbers(full_run):
    workdir, config = full_run
    table = pd.read_csv(workdir / "results/synthetic/summary.tsv", sep="\t")
    assert set(config["experiments"]) <= set(table.iloc[:, 0])
    summary = (workdir / "results/synthetic/summary.md").read_text()
    assert "0.5650" in summary and "published" in summary.lower()
    assert "LOSO" in summary or "leave-one-subject-out" in summary.lower()


def test_every_experiment_is_evaluated_on_all_subjects(full_run):
    workdir, _ = full_run
    per_subject = sorted(workdir.glob("results/synthetic/evaluation/*/per_subject.csv"))
    assert len(per_subject) == 3
    for path in per_subject:
        subjects = set(pd.read_csv(path, dtype={"subject": str})["subject"])
        assert {"sub01", "sub02", "sub03"} <= subjects
        assert (path.parent / "confusion.png").stat().st_size > 1000


def test_default_target_builds_the_report(full_run):
    workdir, _ = full_run
    report = (workdir / "results/synthetic/report.html").read_text(errors="replace")
    assert len(report) > 10_000
    for figure in ("confusion.png", "per_class_f1.png", "training_curves.png", "summary.md"):
        assert figure in report
    assert not list(workdir.glob("results/synthetic/*.config.json"))  # temp config removed


def test_report_builds_on_request(full_run):
    workdir, _ = full_run
    run_snakemake(workdir, "--report", "report.html")
    assert (workdir / "report.html").stat().st_size > 10_000


def test_named_targets_resolve_to_their_variants(full_run):
    workdir, _ = full_run
    for target, jobs in (("alpha_sweep", "alpha_plot"), ("ablation", "sweep_summary")):
        result = run_snakemake(workdir, target, "-n")
        assert jobs in result.stdout + result.stderr


def test_variants_with_the_method_parameters_reuse_its_folds(full_run):
    """alpha_8 (sweep) and mscnn, stream_flow and evm_flow, no_magnification and alpha_0 have
    identical parameters: they must share artifacts instead of training again."""
    workdir, config = full_run
    result = run_snakemake(workdir, "alpha_sweep", "ablation", "-n")
    stats = result.stdout.split("Job stats:")[1]
    train_jobs = int(
        next(line.split()[1] for line in stats.splitlines() if line.startswith("train "))
    )
    new_alphas = [a for a in config["sweeps"]["alpha"] if a != config["evm"]["alpha"]]
    new_ablation_variants = 8  # 3 over-samplers, input-level, 3 stream subsets, filter-only
    assert train_jobs == (len(new_alphas) + new_ablation_variants) * 3  # 3 tiny subjects


def test_over_sampler_variants_refit_the_head_on_the_mscnn_trunk(full_run):
    """The ablation's over-samplers differ only after the dense layer: their folds take the
    mscnn fold's trunk (`--trunk`) instead of training it again; the input-level over-sampler
    balances the batches, so it trains its own."""
    workdir, _ = full_run
    result = run_snakemake(workdir, "ablation", "-n", "-p")
    commands = re.findall(r"^Shell command: (mer train .*)$", result.stdout + result.stderr, re.M)
    out_dirs = {command.split()[2]: command for command in commands}
    for variant in ("oversampler_none", "oversampler_smote", "oversampler_adasyn"):
        folds = [d for d in out_dirs if f"/train/{variant}-" in d]
        assert len(folds) == 3, folds  # 3 tiny subjects
        for out_dir in folds:
            trunk_dir = re.search(r"--trunk (\S+)/checkpoint\.pt", out_dirs[out_dir]).group(1)
            experiment, seed_and_subject = trunk_dir.split("/train/")[1].split("/", 1)
            assert experiment.startswith("mscnn-"), trunk_dir
            assert out_dir.endswith(f"/{seed_and_subject}"), (out_dir, trunk_dir)  # same fold
    assert not any("--trunk" in c for d, c in out_dirs.items() if "/oversampler_input-" in d)

    # One such fold, run: the trunk's training history is taken over, not trained again.
    out_dir = next(d for d in out_dirs if "/train/oversampler_smote-" in d)
    run_snakemake(workdir, f"{out_dir}/predictions.csv", "--cores", "2")
    trunk_dir = re.search(r"--trunk (\S+)/checkpoint\.pt", out_dirs[out_dir]).group(1)
    history = (workdir / out_dir / "history.csv").read_text()
    assert history == (workdir / trunk_dir / "history.csv").read_text()
    fold = json.loads((workdir / out_dir / "fold.json").read_text())
    assert fold["oversampler"] == "smote" and fold["trunk_from"].startswith(trunk_dir)
