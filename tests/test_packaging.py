"""envs/mer.yaml (conda users) must ask for the same packages as pyproject.toml (pip users)."""

import re
import tomllib

import yaml

from conftest import REPO

# PyPI name -> conda-forge name where they differ.
CONDA_NAME = {"torch": "pytorch", "opencv-contrib-python-headless": "opencv"}


def _split(requirement: str) -> tuple[str, str]:
    name, spec = re.match(r"\s*([A-Za-z0-9_.-]+)\s*(.*)", requirement).groups()
    return name.lower(), spec.replace(" ", "")


def test_conda_environment_mirrors_the_runtime_dependencies():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    wanted = {
        CONDA_NAME.get(n, n): spec for n, spec in map(_split, pyproject["project"]["dependencies"])
    }
    environment = yaml.safe_load((REPO / "envs" / "mer.yaml").read_text())
    listed = dict(_split(d) for d in environment["dependencies"] if isinstance(d, str))
    listed.pop("pip")
    assert listed.pop("python") == ">=3.11" == pyproject["project"]["requires-python"]
    assert listed == wanted


def test_conda_environment_installs_mer_itself():
    environment = yaml.safe_load((REPO / "envs" / "mer.yaml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert "--editable .." in pip_section


def test_ci_runs_the_readme_commands():
    readme = (REPO / "README.md").read_text()
    commands = re.findall(r"```bash\n(.+?)\n```", readme)
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command in (REPO / ".ci" / "run").read_text().splitlines()
    assert any("snakemake --cores all" in c for c in commands)
