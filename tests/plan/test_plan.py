"""The experiment plan, without Snakemake: keys chain from upstream, equal parameters share
artifacts, head-only variants reuse a trunk, sweeps and the clean-cache key set."""

import copy
import json

import pytest
import yaml
from snakemake.utils import validate

import mer.plan.runs
from conftest import REPO
from mer.plan.runs import build_plan

SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")
DEFAULT = yaml.safe_load((REPO / "config.yaml").read_text())


def validated(change=None) -> dict:
    """config.yaml, changed, with the schema's defaults filled in as the Snakefile does."""
    config = copy.deepcopy(DEFAULT)
    if change:
        change(config)
    validate(config, SCHEMA)
    return config


@pytest.fixture(scope="module")
def plan():
    return build_plan(validated())


def test_each_stage_key_chains_from_the_one_before(plan):
    chain = plan.default_chain
    assert plan.runs["flow"][chain["flow"]]["evm_key"] == chain["evm"]
    assert plan.runs["masks"][chain["masks"]]["flow_key"] == chain["flow"]
    assert plan.runs["shards"][chain["shards"]]["mask_key"] == chain["masks"]
    for run in plan.runs["train"].values():
        assert run["shards"] in plan.runs["shards"]
        assert plan.runs["shards"][run["shards"]]["flow_key"] == run["flow"]
    for run in plan.runs["baseline"].values():
        assert run["features_key"] in plan.runs["features"]


def test_the_default_experiments_and_their_fold_stages(plan):
    assert list(plan.experiments) == list(DEFAULT["experiments"])
    for name, key in plan.experiments.items():
        assert key.startswith(f"{name}-")
        assert plan.experiment_name(key) == name
    assert plan.fold_stage(plan.experiments["mscnn"]) == "train"
    assert plan.fold_stage(plan.experiments["lbptop"]) == "baseline"
    assert plan.fold_stage(plan.sweeps["paper"]["elrcn"]) == "elrcn"


def test_a_changed_upstream_setting_changes_every_key_below_it():
    base = build_plan(validated()).default_chain
    alpha = build_plan(validated(lambda c: c["evm"].update(alpha=16))).default_chain
    threshold = build_plan(validated(lambda c: c["masks"].update(threshold=60))).default_chain
    assert all(alpha[stage] != base[stage] for stage in base)
    assert threshold["flow"] == base["flow"] and threshold["evm"] == base["evm"]
    assert threshold["masks"] != base["masks"] and threshold["shards"] != base["shards"]


def test_experiments_with_equal_parameters_share_the_first_ones_artifacts():
    def twin(config):
        config["experiments"]["mscnn_again"] = copy.deepcopy(config["experiments"]["mscnn"])

    plan = build_plan(validated(twin))
    assert plan.experiments["mscnn_again"] == plan.experiments["mscnn"]
    assert plan.experiments["mscnn"].startswith("mscnn-")
    # The alpha sweep's entry at the configured alpha is the configured method itself.
    alpha = DEFAULT["evm"]["alpha"]
    assert plan.sweeps["alpha_sweep"][f"alpha_{alpha:g}"] == plan.experiments["mscnn"]


def test_a_variant_that_differs_only_in_the_head_takes_the_trunk_of_the_first():
    def variants(config):
        config["sweeps"]["ablation"] = {
            "head_only": {"train": {"head_epochs": 7}},
            "balanced_batches": {"train": {"oversampler": "input"}},
            "other_lr": {"train": {"learning_rate": 0.05}},
        }

    plan = build_plan(validated(variants))
    ablation, train = plan.sweeps["ablation"], plan.runs["train"]
    assert train[ablation["mscnn"]]["trunk_from"] is None
    assert train[ablation["head_only"]]["trunk_from"] == ablation["mscnn"]
    assert train[ablation["balanced_batches"]]["trunk_from"] is None
    assert train[ablation["other_lr"]]["trunk_from"] is None


def test_sweeps_hold_their_variants_in_config_order(plan):
    alphas = DEFAULT["sweeps"]["alpha"]
    assert list(plan.sweeps["alpha_sweep"]) == [f"alpha_{a:g}" for a in alphas]
    for a, key in zip(alphas, plan.sweeps["alpha_sweep"].values(), strict=True):
        evm_key = plan.runs["train"][key]["evm"]
        assert plan.runs["evm"][evm_key]["alpha"] == a
    assert list(plan.sweeps["ablation"]) == ["mscnn", *DEFAULT["sweeps"]["ablation"]]
    assert list(plan.sweeps["beyond"]) == list(DEFAULT["sweeps"].get("beyond", {}))
    assert set(plan.experiments) <= set(plan.sweeps["paper"])
    assert {"lbptop", "elrcn"} <= set(plan.sweeps["paper"])


def test_the_clean_cache_key_set_is_every_planned_run(plan):
    keys = plan.keys()
    for stage in mer.plan.runs.STAGES:
        assert keys[stage] == list(plan.runs[stage])
    assert keys["evaluation"] == keys["train"] + keys["baseline"] + keys["elrcn"]
    assert keys["dataset"] == [plan.synth_key]
    assert keys["elrcn_inputs"] == sorted({r["inputs_key"] for r in plan.runs["elrcn"].values()})
    every_experiment = {k for sweep in plan.sweeps.values() for k in sweep.values()}
    assert every_experiment <= set(keys["evaluation"])


def test_training_keys_carry_the_compute_mode_and_the_training_numerics(monkeypatch):
    base = build_plan(validated())
    fast = build_plan(validated(lambda c: c.update(compute="fast")))
    monkeypatch.setattr(mer.plan.runs, "TRAINING_NUMERICS", mer.plan.runs.TRAINING_NUMERICS + 1)
    newer = build_plan(validated())
    for other in (fast, newer):
        assert other.default_chain == base.default_chain  # preprocessing is reused
        assert other.experiments["mscnn"] != base.experiments["mscnn"]
        assert other.experiments["lbptop"] == base.experiments["lbptop"]


def test_a_bad_override_is_named_with_its_experiment_and_key():
    def bad(config):
        config["experiments"]["mscnn"] = {"masks": {"threshold": 300}}

    with pytest.raises(ValueError, match=r"experiments\.mscnn sets masks\.threshold"):
        build_plan(validated(bad))


def test_synthetic_priors_must_name_the_classes():
    def mismatch(config):
        config["dataset"]["classes"] = ["negative", "positive", "surprise", "other", "none"]

    with pytest.raises(ValueError, match="class_priors"):
        build_plan(validated(mismatch))


def test_mer_plan_prints_the_workflow_s_keys(capsys, monkeypatch):
    from mer import cli

    monkeypatch.chdir(REPO)
    assert cli.main(["plan"]) == 0
    shown = json.loads(capsys.readouterr().out)
    plan = build_plan(validated())
    assert shown["keys"] == plan.keys()
    assert shown["experiments"] == plan.experiments


def test_mer_plan_names_the_file_of_a_bad_config(tmp_path, capsys):
    from mer import cli

    bad = tmp_path / "bad.yaml"
    bad.write_text("evm:\n  alpah: 8\n")
    assert cli.main(["plan", str(REPO / "config.yaml"), str(bad)]) == 2
    error = capsys.readouterr().err
    assert "bad.yaml" in error and "alpah" in error


def test_the_recommended_model_runs_in_paper_and_beyond_on_its_variants_artifacts():
    def change(config):
        config["sweeps"]["beyond"]["mer_best"] = {"train": {"streams": ["flow_strain"]}}
        config["sweeps"]["beyond"]["flow_strain"] = {"train": {"streams": ["flow_strain"]}}

    plan = build_plan(validated(change))
    assert plan.sweeps["paper"]["mer_best"] == plan.sweeps["beyond"]["mer_best"]
    assert plan.sweeps["beyond"]["mer_best"] == plan.sweeps["beyond"]["flow_strain"]
    in_paper = "mer_best" in build_plan(validated()).sweeps["paper"]
    assert in_paper == ("mer_best" in DEFAULT["sweeps"]["beyond"])
