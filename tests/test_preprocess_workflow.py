"""The preprocessing DAG: one artifact per sample per stage under parameter-keyed paths, so
that a parameter change reruns only its stage and what follows, and switching back is free."""

import re

import numpy as np
import pytest
import yaml

from conftest import make_tiny, run_snakemake
from mer import files

pytestmark = pytest.mark.slow


def planned_jobs(workdir) -> dict[str, int]:
    """Rule -> job count of a dry run (empty when there is nothing to do)."""
    result = run_snakemake(workdir, "-n", "--quiet", "rules")
    output = result.stdout + result.stderr
    table = re.search(r"job\s+count\n[-\s]+\n(.*?)\n\s*total", output, re.S)
    if table is None:
        assert "Nothing to be done" in output, output
        return {}
    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", table.group(1), re.M)}


def assert_reruns(jobs: dict, expected: dict, not_rerun=()) -> None:
    """These stages rerun with these job counts; those upstream of the change do not."""
    assert {rule: jobs.get(rule) for rule in expected} == expected, jobs
    assert not set(not_rerun) & set(jobs), jobs


def edit_config(workdir, **sections):
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    for section, values in sections.items():
        config[section].update(values)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return config


@pytest.fixture(scope="module")
def preprocessed(tmp_path_factory):
    """A tiny synthetic dataset run through the whole preprocessing once."""
    from conftest import REPO

    workdir = tmp_path_factory.mktemp("preprocess")
    config = make_tiny(yaml.safe_load((REPO / "config.yaml").read_text()))
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    run_snakemake(workdir, "--cores", "2")
    return workdir, config


def test_every_sample_gets_masks_and_a_preview(preprocessed):
    workdir, config = preprocessed
    mask_files = list(workdir.glob("results/synthetic/masks/*/*.npz"))
    samples = (workdir / "results/synthetic/samples.tsv").read_text().splitlines()[1:]
    assert len(mask_files) == len(samples) > 0
    artifact = files.load_npz(mask_files[0], "flow_image", "mask", "apex_gray", "masked_apex")
    assert artifact["flow_image"].shape == (48, 48, 3)
    assert (artifact["masked_apex"][~artifact["mask"]] == 0).all()
    assert np.array_equal(
        artifact["masked_apex"][artifact["mask"]], artifact["apex_gray"][artifact["mask"]]
    )
    assert len(list(workdir.glob("results/synthetic/masks/*/preview/*.png"))) == len(samples)
    assert list(workdir.glob("results/synthetic/masks/*/contact_sheet.png"))


def test_one_shard_per_subject_with_ten_rows_per_sample(preprocessed):
    from mer import samples, shards

    workdir, _ = preprocessed
    table = samples.read_samples(workdir / "results/synthetic/samples.tsv")
    paths = sorted(workdir.glob("results/synthetic/shards/*/*.h5"))
    assert [p.stem for p in paths] == sorted(table.subject.unique())
    for path in paths:
        data = shards.read_shard(path)
        subject_samples = table[table.subject == path.stem]
        assert len(data["label"]) == 10 * len(subject_samples)
        assert set(data["sample"]) == set(subject_samples["sample"])


def test_shard_size_change_reruns_only_the_shards(preprocessed):
    workdir, config = preprocessed
    edit_config(workdir, shards=dict(input_size=40))
    try:
        jobs = planned_jobs(workdir)
    finally:
        edit_config(workdir, shards=dict(input_size=config["shards"]["input_size"]))
    assert_reruns(jobs, {"shards": 2, "train": 4}, not_rerun=("masks", "flow", "evm"))


def test_nothing_to_do_after_a_complete_run(preprocessed):
    workdir, _ = preprocessed
    assert planned_jobs(workdir) == {}


def test_alpha_change_reruns_evm_and_after_but_not_samples(preprocessed):
    workdir, config = preprocessed
    n = len((workdir / "results/synthetic/samples.tsv").read_text().splitlines()) - 1
    edit_config(workdir, evm=dict(alpha=4))
    try:
        jobs = planned_jobs(workdir)
    finally:
        edit_config(workdir, evm=dict(alpha=config["evm"]["alpha"]))
    assert_reruns(
        jobs,
        {"evm": n, "flow": n, "masks": n, "shards": 2, "train": 4},
        not_rerun=("synth", "samples", "lbptop_features", "lbptop_loso"),
    )
    assert planned_jobs(workdir) == {}  # alpha set back: the earlier artifacts are found


def test_threshold_change_reruns_only_masks_and_after(preprocessed):
    workdir, config = preprocessed
    n = len((workdir / "results/synthetic/samples.tsv").read_text().splitlines()) - 1
    edit_config(workdir, masks=dict(threshold=60))
    try:
        jobs = planned_jobs(workdir)
    finally:
        edit_config(workdir, masks=dict(threshold=config["masks"]["threshold"]))
    assert_reruns(
        jobs,
        {"masks": n, "contact_sheet": 1, "shards": 2, "train": 4},
        not_rerun=("evm", "flow", "lbptop_features"),
    )


def test_flow_method_change_reruns_flow_and_after(preprocessed):
    workdir, config = preprocessed
    n = len((workdir / "results/synthetic/samples.tsv").read_text().splitlines()) - 1
    edit_config(workdir, flow=dict(method="dis"))
    try:
        jobs = planned_jobs(workdir)
    finally:
        edit_config(workdir, flow=dict(method=config["flow"]["method"]))
    assert_reruns(jobs, {"flow": n, "masks": n, "shards": 2, "train": 4}, not_rerun=("evm",))


def test_filter_only_control_gets_its_own_artifacts(preprocessed):
    workdir, _ = preprocessed
    edit_config(workdir, evm=dict(mode="filter_only"))
    try:
        jobs = planned_jobs(workdir)
    finally:
        edit_config(workdir, evm=dict(mode="magnify"))
    assert jobs.get("evm", 0) > 0 and "samples" not in jobs


def test_every_fold_of_every_experiment_writes_its_outputs(preprocessed):
    import json

    import pandas as pd
    import torch

    workdir, config = preprocessed
    folds = sorted(workdir.glob("results/synthetic/train/*/seed0/*"))
    subjects = {"sub01", "sub02"}
    networks = [e for e in config["experiments"].values() if e.get("method") != "lbptop"]
    assert len(folds) == len(networks) * len(subjects)
    for fold_dir in folds:
        predictions = pd.read_csv(fold_dir / "predictions.csv")
        assert set(predictions.subject) == {fold_dir.name}
        fold = json.loads((fold_dir / "fold.json").read_text())
        assert fold_dir.name not in fold["train_subjects"] + fold["validation_subjects"]
        checkpoint = torch.load(fold_dir / "checkpoint.pt", weights_only=True)
        assert checkpoint["held_out"] == fold_dir.name
        assert len(pd.read_csv(fold_dir / "history.csv")) == fold["epochs_run"]
        assert (
            "epoch 1 "
            in (
                workdir
                / "results/synthetic/logs/train"
                / fold_dir.parent.parent.name
                / "seed0"
                / f"{fold_dir.name}.log"
            ).read_text()
        )


def test_learning_rate_change_reruns_only_training(preprocessed):
    workdir, config = preprocessed
    edit_config(workdir, train=dict(learning_rate=0.005))
    try:
        jobs = planned_jobs(workdir)
    finally:
        edit_config(workdir, train=dict(learning_rate=config["train"]["learning_rate"]))
    assert_reruns(jobs, {"train": 4, "evaluate": 2}, not_rerun=("shards", "lbptop_loso"))
