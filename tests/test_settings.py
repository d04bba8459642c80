"""A default lives in the schema only: dataclasses, verb options and docs take it from there."""

import argparse

import pytest

from conftest import REPO
from mer import cli
from mer.arguments import SchemaDefault
from mer.learn.train import TrainConfig
from mer.settings import default, defaults, schema


def test_a_section_built_from_the_schema_alone_is_valid():
    assert TrainConfig.from_dict(defaults("train")) == TrainConfig()


def _schema_keys(spec: dict) -> set[str]:
    keys = set()
    for key, sub in spec.get("properties", {}).items():
        keys |= {key} | _schema_keys(sub)
    return keys


def _verb_options():
    parser = cli.build_parser()
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for verb, sub in verbs.choices.items():
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                yield verb, action


# Options that are not config settings though a config key has the same name.
NOT_SETTINGS = {"seed", "method", "size", "classes", "name"}


def test_no_verb_option_states_a_default_of_a_config_setting():
    keys = _schema_keys(schema())
    literal = [
        f"mer {verb} --{action.dest} default {action.default!r}"
        for verb, action in _verb_options()
        if action.dest in keys - NOT_SETTINGS
        and action.default not in (None, False, argparse.SUPPRESS)
        and not isinstance(action.default, SchemaDefault)
    ]
    assert not literal, "take these from the schema (mer.arguments.SchemaDefault): " + "; ".join(
        literal
    )


def test_every_schema_default_of_an_option_is_the_schema_s_value():
    found = [(verb, a) for verb, a in _verb_options() if isinstance(a.default, SchemaDefault)]
    assert len(found) >= 15
    for verb, action in found:
        value = default(action.default.path)  # a KeyError names a path the schema lacks
        assert value is not None or action.type is None, (verb, action.dest)


def test_an_option_left_out_takes_the_schema_default():
    args = cli.parse(["masks", "evm.npz", "flow.npz", "out.npz", "--preview", "p.png"])
    assert (args.threshold, args.normalise, args.scale_px) == tuple(
        defaults("masks")[k] for k in ("threshold", "normalise", "scale_px")
    )
    args = cli.parse(["masks", "e", "f", "o", "--preview", "p.png", "--threshold", "60"])
    assert args.threshold == 60


def _documented_defaults():
    """(key, the default cell's value) of docs/configuration.md's tables, where a row's keys
    and its comma-separated defaults pair up and the default is a literal (not prose)."""
    import re

    import yaml

    text = (REPO / "docs" / "configuration.md").read_text()
    for keys_cell, default_cell in re.findall(r"^\| (`[^|]+) \| ([^|]+) \|", text, flags=re.M):
        keys = re.findall(r"`([\w.]+)`", keys_cell)
        values = [v.strip() for v in re.split(r",\s*(?![^\[{]*[\]}])", default_cell)]
        if len(keys) != len(values):
            continue
        for key, value in zip(keys, values, strict=True):
            if " " in value or value in ("auto", "—"):
                continue
            yield key, yaml.safe_load(value.strip("`"))


def test_the_defaults_in_docs_configuration_are_the_schema_s():
    checked, wrong = 0, []
    for key, documented in _documented_defaults():
        try:
            value = default(key)
        except KeyError:
            continue  # a row naming an example value, not a key with a default
        checked += 1
        if documented != value:
            wrong.append(f"{key}: docs {documented!r}, schema {value!r}")
    assert checked >= 20 and not wrong, wrong


@pytest.mark.parametrize(
    ("module", "name", "exempt"),
    [
        ("learn/train.py", "TrainConfig", {"streams"}),  # a tuple of the schema's list
        ("data/synth.py", "SynthParams", {"class_priors"}),  # a copy of the schema's dict
        ("methods/elrcn.py", "ElrcnSettings", set()),
    ],
)
def test_settings_dataclasses_state_no_default_of_their_own(module, name, exempt):
    import ast

    tree = ast.parse((REPO / "src" / "mer" / module).read_text())
    cls = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == name)
    own = [
        field.target.id
        for field in cls.body
        if isinstance(field, ast.AnnAssign)
        and field.target.id not in exempt
        and ast.unparse(field.value) != f"SCHEMA['{field.target.id}']"
    ]
    assert not own, f"{name} states defaults of its own for {own}: read them from the schema"
