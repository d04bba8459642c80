"""The config schema's defaults: the one home of every setting's default value.

Snakemake's `validate` fills them into the workflow's config; code run by hand (`mer train`
without a section, tests, benchmarks) reads them here, so both get the same values.
"""

from __future__ import annotations

import functools
from pathlib import Path

import yaml

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


@functools.cache
def _schema() -> dict:
    with open(SCHEMA) as schema_file:
        return yaml.safe_load(schema_file)


def defaults(section: str) -> dict:
    """The schema's default of every key of a top-level config section that has one."""
    properties = _schema()["properties"][section].get("properties", {})
    return {key: spec["default"] for key, spec in properties.items() if "default" in spec}
