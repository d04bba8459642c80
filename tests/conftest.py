import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mer.synth import SynthParams

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def tiny_params() -> SynthParams:
    """A dataset small enough to render in a second: 3 subjects, 48x48 frames."""
    return SynthParams(
        seed=3, subjects=3, clips_per_subject=2, frame_size=48, frames_min=20, frames_max=28
    )


def run_snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the project's Snakefile in workdir (outputs stay out of the repository)."""
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(workdir),
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=workdir)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    return tmp_path


TINY_SYNTHETIC = dict(subjects=2, clips_per_subject=2, frame_size=48, frames_min=20, frames_max=28)
# Training that takes seconds: it checks the wiring, not the learning (tests/test_train.py does).
FAST_TRAINING = dict(max_epochs=1, head_epochs=2, batchnorm_rows=64, dense_units=16)


def make_tiny(config: dict, **synthetic) -> dict:
    """A config for workflow tests: a tiny synthetic set, 32 px shards, one-epoch training."""
    config["synthetic"].update(TINY_SYNTHETIC, **synthetic)
    config["shards"]["input_size"] = 32
    config["train"].update(FAST_TRAINING)
    return config
