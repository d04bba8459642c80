"""Argument types shared by the stages' `mer` verbs (a leaf module: imports nothing of mer)."""

from __future__ import annotations

import argparse


def class_list(text: str) -> list[str]:
    """Comma-separated names (classes, subjects) -> a list, blanks dropped."""
    return [c.strip() for c in text.split(",") if c.strip()]


def name_path(text: str) -> tuple[str, str]:
    """NAME=PATH (split at the first '=')."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, path


def optional_size(text: str) -> int | None:
    """--size 64, or None/null (a YAML null rendered by a rule): keep the native size."""
    return None if text.strip().lower() in ("none", "null", "") else int(text)


class SchemaDefault:
    """An option's default that lives in the config schema: `mer` replaces it by the schema's
    value of `path` after parsing (mer.cli.parse), so that the parser reads no YAML."""

    def __init__(self, path: str):
        self.path = path

    def __repr__(self) -> str:  # what --help shows as %(default)s
        return f"config {self.path}"
