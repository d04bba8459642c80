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
    train_dirs = re.findall(r"^Shell command: mer train (\S+)", output, re.M)
    for name in config["sweeps"]["beyond"]:
        folds = [d for d in train_dirs if f"/train/{name}-" in d]
        assert len(folds) == 3, (name, folds)  # 3 tiny subjects, one seed
    init_job = re.search(r"init_weights-\w+/seed0/sub01[^\n]*", output)
    assert init_job and re.search(r"input: [^\n]*init\.pth", output)


def test_the_new_settings_at_their_defaults_stay_out_of_keys_and_params(tiny_workdir):
    """So the method's folds keep the keys and params they had before these settings existed
    (and are not rerun); a variant that sets one gets it."""
    workdir, _ = tiny_workdir
    result = run_snakemake(workdir, "beyond", "-n", "-p")
    commands = re.findall(r"^Shell command: (mer train .*)$", result.stdout + result.stderr, re.M)
    later = ("label_smoothing", "stream_dropout", "fusion", "init_weights")
    for command in commands:
        out_dir = command.split()[2]
        named = [name for name in later if f'"{name}"' in command]
        if "/train/mscnn-" in out_dir or "/train/evm_flow-" in out_dir:
            assert named == [], command
        if "/train/late_fusion-" in out_dir:
            assert named == ["fusion"] and '"fusion": "late"' in command, command


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
