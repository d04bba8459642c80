"""The package shows the pipeline: stage subpackages in the data's order, imports only
downwards, no import cycle, no module or function too long to read, tests beside their stage."""

import argparse
import ast
import importlib
import re
from pathlib import Path

from conftest import REPO

SRC = REPO / "src" / "mer"
# The data's path through the package: a stage may import only from itself and earlier ones.
STAGES = ["store", "data", "preprocess", "learn", "methods", "evaluation", "plan"]
# Leaf modules any stage may use: the package itself (__version__), shared argument types,
# the compute mode and the schema defaults.
SHARED = {"mer", "mer.arguments", "mer.compute", "mer.settings"}
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 100


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every mer module a file imports, at module level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "mer"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mer"):
            for alias in node.names:  # `from mer.data import samples` imports mer.data.samples
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in MODULES else node.module)
    return found


MODULES = {_module_name(p): p for p in SRC.rglob("*.py")}
GRAPH = {name: _imports(path) & set(MODULES) for name, path in MODULES.items()}


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def test_the_stage_subpackages_exist_in_the_data_order():
    packages = {p.parent.name for p in SRC.glob("*/__init__.py")}
    assert packages == set(STAGES)


def test_no_import_cycle():
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for imported in sorted(GRAPH[module]):
            if imported == module:
                continue
            assert state.get(imported) != 1, "import cycle: " + " -> ".join(path + [imported])
            if imported not in state:
                visit(imported, path + [imported])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])


def test_stages_import_only_from_themselves_and_earlier_stages():
    wrong = []
    for module, imported in GRAPH.items():
        stage = _stage(module)
        if stage is None:
            continue
        for target in imported - SHARED:
            target_stage = _stage(target)
            if target_stage is None or STAGES.index(target_stage) > STAGES.index(stage):
                wrong.append(f"{module} imports {target}")
    assert not wrong, wrong


def test_the_command_line_only_gathers_the_stages_verbs():
    # ... and knows the one error type that a verb turns into a message instead of a traceback.
    data_error = {n for n, p in MODULES.items() if "class DataError(" in p.read_text()}
    assert GRAPH["mer.cli"] <= {f"mer.{stage}.cli" for stage in STAGES} | SHARED | data_error
    for stage in STAGES:
        assert f"mer.{stage}.cli" in MODULES, f"mer.{stage} has no cli module"


def test_no_module_is_too_long():
    long = {name: n for name, p in MODULES.items() if (n := len(p.read_text().splitlines())) > 500}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_is_too_long():
    long = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name}: {lines} lines")
    assert not long, long


def test_tests_mirror_the_stages():
    for stage in STAGES:
        assert list((REPO / "tests" / stage).glob("test_*.py")), f"tests/{stage}/ has no tests"


def test_readme_code_map_lists_every_stage_with_its_verbs():
    readme = (REPO / "README.md").read_text()
    code_map = readme[readme.index("## Code map") :]
    rows = re.findall(r"^\| `mer\.(\w+)` \|.*\| (.*) \|$", code_map, flags=re.M)
    assert [stage for stage, _ in rows] == STAGES
    for stage, verbs_cell in rows:
        verbs = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"mer.{stage}.cli").register(verbs)
        assert set(re.findall(r"`([a-z-]+)`", verbs_cell)) == set(verbs.choices), stage
