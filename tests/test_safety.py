"""Safety: no code from strings, dataset paths stay in the data root (weights-only checkpoints:
tests/learn/test_checkpoint_safety.py)."""

import ast
import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from mer.data import samples

REPO = Path(__file__).resolve().parents[1]
PYTHON_FILES = sorted((REPO / "src").rglob("*.py"))
WORKFLOW_FILES = [REPO / "Snakefile", *sorted((REPO / "workflow").rglob("*.smk"))]


def unsafe_calls(tree: ast.AST) -> list[str]:
    """eval/exec/compile, yaml.load-like and pickle loads, torch.load without
    weights_only=True, np.load with allow_pickle=True."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
        if name in ("eval", "exec", "compile", "__import__"):
            found.append(name)
        elif name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load", "yaml.load_all"):
            if "SafeLoader" not in keywords.get("Loader", ""):
                found.append(name)
        elif name in ("pickle.load", "pickle.loads", "dill.load", "joblib.load"):
            found.append(name)
        elif name == "torch.load" and keywords.get("weights_only") != "True":
            found.append("torch.load without weights_only=True")
        elif name in ("np.load", "numpy.load") and keywords.get("allow_pickle") == "True":
            found.append("np.load(allow_pickle=True)")
    return found


@pytest.mark.parametrize("path", PYTHON_FILES, ids=lambda p: p.name)
def test_python_sources_never_run_strings_or_unpickle(path):
    assert unsafe_calls(ast.parse(path.read_text())) == [], path


def test_the_scan_catches_what_it_looks_for():
    bad = (
        "eval(x)\nexec(y)\nyaml.load(s)\ntorch.load(p)\ntorch.load(p, weights_only=False)\n"
        "pickle.loads(b)\nnp.load(p, allow_pickle=True)\n"
    )
    good = "model.eval()\nyaml.safe_load(s)\ntorch.load(p, weights_only=True)\n"
    assert len(unsafe_calls(ast.parse(bad))) == 7
    assert unsafe_calls(ast.parse(good)) == []


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_workflow_files_never_run_strings(path):
    text = path.read_text()
    assert not re.search(r"(?<![.\w])(eval|exec)\s*\(", text), path
    assert not re.search(r"yaml\.(load|unsafe_load|full_load)\s*\(", text), path
    assert "torch.load" not in text and "pickle" not in text, path


def make_clip(folder: Path, numbers):
    folder.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        cv2.imwrite(str(folder / f"img{n}.png"), np.full((8, 8), n, np.uint8))


@pytest.mark.parametrize(
    "subject, video",
    [
        ("..", "outside"),
        ("s1", "../../outside"),
        ("s1", "/tmp/outside"),
        ("/tmp", "outside"),
        ("s1", ".."),
        ("s1/../..", "outside"),
    ],
)
def test_annotation_paths_cannot_leave_the_data_root(tmp_path, subject, video):
    root = tmp_path / "root"
    make_clip(root / "s1" / "good", range(1, 6))
    # A real clip folder outside the root, so only the path check can stop the row.
    make_clip(tmp_path / "outside", range(1, 6))
    rows = pd.DataFrame(
        [("s1", "good", 1, 3, 5, "others"), (subject, video, 1, 3, 5, "others")],
        columns=["subject", "video", "onset", "apex", "offset", "label"],
    ).assign(fps=200)
    result = samples.build_samples(rows, root, ["others"], "test")
    assert list(result.samples["video"]) == ["good"]
    (skip,) = result.skipped
    assert skip["kind"] == "path" and "would leave the data root" in skip["reason"]
