"""The config schema's defaults: the one home of every setting's default value.

Snakemake's `validate` fills them into the workflow's config; code run by hand (`mer train`
without a section, tests, benchmarks) reads them here, so both get the same values.
"""

from __future__ import annotations

import functools
from pathlib import Path

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


@functools.cache
def schema() -> dict:
    """The workflow's config schema (workflow/schemas/config.schema.yaml), read once."""
    import yaml  # here: `mer --help` and the verbs' parsers read no YAML

    with open(SCHEMA) as schema_file:
        # libyaml's loader where installed: ten times faster, read at every workflow parse.
        return yaml.load(schema_file, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def default(path: str):
    """The schema's default of one setting, by its dotted path (`evm.alpha`,
    `dataset.crop.margin`, `on_bad_sample`)."""
    spec = schema()
    for part in path.split("."):
        spec = spec["properties"][part]
    return spec["default"]


def defaults(section: str) -> dict:
    """The schema's default of every key of a top-level config section that has one."""
    properties = schema()["properties"][section].get("properties", {})
    return {key: spec["default"] for key, spec in properties.items() if "default" in spec}
