"""`snakemake beyond` plans every variant of `sweeps.beyond` (config data) with its summary,
the method's settings keep their artifact keys, and a bad variant is named at parse time."""

import re

import pytest
import yaml

from conftest import REPO, make_tiny, run_snakemake

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_workdir(tmp_path_factory):
    """The tiny config with its samples table made (a dry run plans folds per subject)."""
    workdir = tmp_path_factory.mktemp("beyond")
    config = make_tiny(yaml.safe_load((REPO / "config.yaml").read_text()), subjects=3)
    (workdir / "init.pth").write_bytes(b"")  # a dry run reads no file
    config["sweeps"]["beyond"]["init_weights"] = {"train": {"init_weights": "init.pth"}}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    run_snakemake(workdir, "results/synthetic/samples.tsv", "--cores", "1")
    return workdir, config


def test_beyond_plans_every_variant_and_its_summary(tiny_workdir):
    workdir, config = tiny_workdir
    result = run_snakemake(workdir, "beyond", "-n", "-p")
    output = result.stdout + result.stderr
    assert "results/synthetic/beyond/summary.md" in output
    # its summary gives the verdicts against mscnn and evm_flow and the recommending rule's choice
    assert re.search(
        r"^Shell command: mer summary \S+/beyond/summary\.md .* --beyond ", output, re.M
    )
    train_dirs = re.findall(r"^Shell command: mer train (\S+)", output, re.M)
    for name in config["sweeps"]["beyond"]:
        folds = [d for d in train_dirs if f"/train/{name}-" in d]
        assert len(folds) == 3, (name, folds)  # 3 tiny subjects, one seed
    init_job = re.search(r"init_weights-\w+/seed0/sub01[^\n]*", output)
    assert init_job and re.search(r"input: [^\n]*init\.pth", output)


def test_each_variant_passes_its_own_settings_to_its_folds(tiny_workdir):
    workdir, _ = tiny_workdir
    result = run_snakemake(workdir, "beyond", "-n", "-p")
    commands = re.findall(r"^Shell command: (mer train .*)$", result.stdout + result.stderr, re.M)
    by_variant = {
        command.split()[2].split("/train/")[1].split("-")[0]: command for command in commands
    }
    assert (
        '"fusion": "dense"' in by_variant["mscnn"]
        and '"fusion": "late"' in by_variant["late_fusion"]
    )
    assert '"stream_dropout": 0.3' in by_variant["stream_dropout"]
    assert '"label_smoothing": 0.1' in by_variant["label_smoothing"]


def test_a_bad_beyond_variant_is_named(tiny_workdir):
    workdir, config = tiny_workdir
    original = (workdir / "config.yaml").read_text()
    config["sweeps"]["beyond"]["bad_variant"] = {"train": {"fusion": "early"}}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    try:
        result = run_snakemake(workdir, "beyond", "-n", check=False)
    finally:
        (workdir / "config.yaml").write_text(original)
    assert result.returncode != 0
    assert "sweeps.beyond.bad_variant sets train.fusion" in result.stdout + result.stderr
