"""`mer <verb> --help` and the parser of every verb load no heavy module: each workflow job
starts a `mer` process, so what the parser imports is paid once per job."""

import json
import subprocess
import sys

import pytest

HEAVY = ("numpy", "cv2", "torch", "sklearn", "scipy", "pandas", "h5py", "matplotlib", "yaml")

LOADED_AFTER = """
import json, sys
{code}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def heavy_modules_loaded(code: str) -> list[str]:
    """The heavy modules in sys.modules after running `code` in a fresh interpreter."""
    script = LOADED_AFTER.format(code=code, heavy=HEAVY)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_probe_sees_a_heavy_module_when_one_is_imported():
    assert heavy_modules_loaded("import numpy") == ["numpy"]


def test_building_the_parser_of_every_verb_imports_no_heavy_module():
    assert heavy_modules_loaded("import mer.cli; mer.cli.build_parser()") == []


@pytest.mark.parametrize("verb", ["evm-clips", "shards", "train", "samples", "evaluate"])
def test_verb_help_imports_no_heavy_module(verb):
    code = f"""
import mer.cli
try:
    mer.cli.main([{verb!r}, "--help"])
except SystemExit:
    pass
"""
    assert heavy_modules_loaded(code) == []
