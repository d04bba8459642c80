"""The config schema: the default is valid, and mistakes are named with the allowed values."""

import copy

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from conftest import REPO, run_snakemake

SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")


@pytest.fixture
def default_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_default_config_is_valid(default_config):
    validate(copy.deepcopy(default_config), SCHEMA)


@pytest.mark.parametrize(
    "change, named",
    [
        (lambda c: c["dataset"].update(loader="synthetik"), ["loader", "synthetic", "table"]),
        (lambda c: c["synthetic"].update(sead=1), ["sead"]),
        (lambda c: c["synthetic"].update(noise_sigma=-1), ["noise_sigma", "minimum"]),
        (lambda c: c["synthetic"].update(subjects="eight"), ["subjects", "integer"]),
        (lambda c: c["dataset"].update(loader="table"), ["root"]),
        # wrong type, unknown key (top level and nested), impossible values
        (lambda c: c["train"].update(batch_size="64"), ["batch_size", "integer"]),
        (lambda c: c.update(reslts="out"), ["reslts"]),
        (lambda c: c["evm"].update(alpah=8), ["alpah"]),
        (lambda c: c["evm"].update(alpha=-1), ["alpha", "minimum"]),
        (lambda c: c["masks"].update(threshold=256), ["threshold", "maximum"]),
        (lambda c: c["masks"].update(threshold=-1), ["threshold", "minimum"]),
        (lambda c: c["flow"].update(method="lucas_kanade"), ["method", "lucas_kanade", "tvl1"]),
        (lambda c: c.update(on_bad_sample="ignore"), ["on_bad_sample", "skip", "fail"]),
    ],
)
def test_schema_rejects_a_bad_config_naming_the_key(default_config, change, named):
    change(default_config)
    with pytest.raises(WorkflowError) as error:
        validate(default_config, SCHEMA)
    for word in named:
        assert word in str(error.value)


def test_workflow_stops_at_start_on_a_bad_config(workdir):
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["synthetic"]["amplitude_px"] = "large"
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(workdir, "-n", check=False)
    assert result.returncode != 0
    assert "amplitude_px" in result.stderr + result.stdout


def test_priors_must_name_the_configured_classes(workdir):
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["dataset"]["classes"] = ["others", "disgust", "happiness", "repression", "fear"]
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(workdir, "-n", check=False)
    assert result.returncode != 0
    assert "class_priors" in result.stderr + result.stdout


@pytest.mark.parametrize(
    "override, named",
    [
        ({"evm": {"alpha": -1}}, ["experiments.bad_variant", "evm.alpha", "minimum"]),
        ({"train": {"oversampler": "smot"}}, ["experiments.bad_variant", "train.oversampler"]),
    ],
)
def test_workflow_names_the_experiment_and_key_of_a_bad_override(workdir, override, named):
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["experiments"]["bad_variant"] = override
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(workdir, "-n", check=False)
    assert result.returncode != 0
    for word in named:
        assert word in result.stderr + result.stdout


def test_schema_defaults_equal_the_shipped_config(default_config):
    """A key left out of a user's config must mean what config.yaml says it means."""
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    shipped = yaml.safe_load((REPO / "config.yaml").read_text())
    mismatches = []

    def compare(node, values, path):
        for key, sub in node.get("properties", {}).items():
            if not isinstance(values, dict) or key not in values:
                continue
            if "default" in sub and not isinstance(sub["default"], dict):
                if sub["default"] != values[key]:
                    mismatches.append(
                        f"{path}{key}: schema {sub['default']!r}, config {values[key]!r}"
                    )
            compare(sub, values[key], f"{path}{key}.")

    compare(schema, shipped, "")
    assert not mismatches, mismatches
