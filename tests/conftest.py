import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mer.data.synth import SynthParams

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def tiny_params() -> SynthParams:
    """A dataset small enough to render in a second: 3 subjects, 48x48 frames."""
    return SynthParams(
        seed=3, subjects=3, clips_per_subject=2, frame_size=48, frames_min=20, frames_max=28
    )


def snakemake_command(workdir: Path, *args: str) -> list[str]:
    """The command line that runs the project's Snakefile in workdir."""
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
            *args]  # fmt: skip


def run_snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the project's Snakefile in workdir (outputs stay out of the repository)."""
    command = snakemake_command(workdir, *args)
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


@pytest.fixture(scope="session")
def completed_tiny_run(tmp_path_factory) -> tuple[Path, dict]:
    """The tiny config run to completion once (rule all), shared by the workflow tests that
    inspect its artifacts or dry-run changes against it (they restore the config)."""
    import yaml

    workdir = tmp_path_factory.mktemp("completed")
    config = make_tiny(yaml.safe_load((REPO / "config.yaml").read_text()))
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    run_snakemake(workdir, "--cores", "2")
    return workdir, config
