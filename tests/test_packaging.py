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


def _readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", (REPO / "README.md").read_text())


def test_ci_runs_the_readme_test_command():
    test_command = next(c for c in _readme_commands() if "pytest" in c)
    assert test_command in (REPO / ".ci" / "run").read_text().splitlines()


def test_ci_runs_the_readme_first_command_without_test_extras():
    """CI proves what a new user types first: README's install step as written (no test
    extras), then the default target on the smoke config."""
    first = next(c for c in _readme_commands() if "snakemake --cores all" in c)
    assert first.endswith("&& snakemake --cores all")
    assert "[test]" not in first
    ci_line = first + " --configfile workflow/configs/smoke.yaml"
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert ci_line in ci_lines
    # ... and before the test command installs the test extras into that environment.
    assert ci_lines.index(ci_line) < next(i for i, c in enumerate(ci_lines) if "[test]" in c)


def test_smoke_config_keeps_the_default_experiments():
    """The smoke run must exercise what the default run does (only smaller)."""
    smoke = yaml.safe_load((REPO / "workflow" / "configs" / "smoke.yaml").read_text())
    assert "experiments" not in smoke and "method" not in smoke
    assert smoke["dataset"] == {"name": "smoke"}


def test_readme_links_every_documentation_page():
    readme = (REPO / "README.md").read_text()
    linked = set(re.findall(r"\(docs/([\w-]+\.md)\)", readme))
    pages = {p.name for p in (REPO / "docs").glob("*.md")} - {"README.md"}
    assert linked == pages
    for page in pages:  # every relative link inside the docs resolves
        text = (REPO / "docs" / page).read_text()
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            assert (REPO / "docs" / target).exists(), f"docs/{page} links missing {target}"


def test_files_the_documentation_names_exist():
    """A path in README or docs/ (a test, a benchmark, a config, a module) that was moved or
    removed turns this red, so the reference stays true after a refactor."""
    pattern = r"\b((?:tests|benchmarks|workflow|src|profiles|envs)/[\w./-]+\.(?:py|yaml|smk|md))"
    missing = []
    for page in [REPO / "README.md", *(REPO / "docs").glob("*.md")]:
        for path in re.findall(pattern, page.read_text()):
            if not (REPO / path).exists():
                missing.append(f"{page.name}: {path}")
    assert not missing, missing


# Tests that read the licensed sheets from that folder when it is there name it as a path; this
# file names the pattern.
UNRESOLVABLE_ALLOWED = {
    "tests/data/test_composite.py",
    "tests/data/test_datasets.py",
    "tests/test_packaging.py",
}


def test_no_file_points_where_a_clone_cannot_follow():
    """No reference to ../shared or to an issue number: a clone has neither."""
    import subprocess

    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    pattern = re.compile(r"\.\./shared|\b[Ii]ssues? \d+|(?<![\w&])#\d{1,3}\b")
    found = []
    for path in tracked:
        text_file = path == "Snakefile" or path.endswith((".py", ".md", ".yaml", ".smk", ".rst"))
        if path in UNRESOLVABLE_ALLOWED or not text_file:
            continue
        text = (REPO / path).read_text(errors="ignore")
        found += [f"{path}: {m.group()}" for m in pattern.finditer(text)]
    assert not found
