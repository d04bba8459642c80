"""A default lives in the schema; a Python dataclass that also states one must agree with it."""

import dataclasses

import pytest

from mer.data.synth import SynthParams
from mer.learn.train import TrainConfig
from mer.settings import defaults


def _default(field):
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


@pytest.mark.parametrize(
    ("section", "settings"), [("train", TrainConfig), ("synthetic", SynthParams)]
)
def test_python_defaults_are_the_schema_defaults(section, settings):
    schema = defaults(section)
    python = {f.name: _default(f) for f in dataclasses.fields(settings) if f.name in schema}
    wanted = {k: (tuple(v) if isinstance(v, list) else v) for k, v in schema.items() if k in python}
    assert python == wanted


def test_a_section_built_from_the_schema_alone_is_valid():
    assert TrainConfig.from_dict(defaults("train")) == TrainConfig()
