"""Each kind of artifact a run writes, written by the code that writes it in a run, under a
folder; `python fault_writers.py KIND DISK OUT` writes it on DISK (a tiny filesystem), then
once more after DISK is remounted large (the fault removed), copies that second artifact to OUT
and prints what happened as JSON (test_disk_full.py runs it in a private mount namespace)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from mer.store import files


def _array(seed: int, shape) -> np.ndarray:
    return np.random.default_rng(seed).random(shape, dtype=np.float32)  # incompressible


def evm(folder: Path) -> Path:  # as preprocess.artifacts.evm_artifact writes it
    path = folder / "evm/uniform-a8-0123abcd/s1_c0.npz"
    files.save_npz(path, compress=False, onset_magnified=_array(0, (96, 96)),
                   apex_magnified=_array(1, (96, 96)), fps=np.float32(200))  # fmt: skip
    return path


def flow(folder: Path) -> Path:
    path = folder / "flow/deepflow-0123abcd/s1_c0.npz"
    files.save_npz(path, compress=False, flow_uv=_array(2, (96, 96, 2)))
    return path


def masks(folder: Path) -> Path:
    path = folder / "masks/t50-0123abcd/s1_c0.npz"
    files.save_npz(path, flow_image=(_array(3, (160, 160, 3)) * 255).astype(np.uint8),
                   mask=_array(4, (160, 160)) > 0.5, apex_gray=_array(5, (160, 160)))  # fmt: skip
    return path


def shard(folder: Path) -> Path:
    from mer.learn import augment, shards

    path = folder / "shards/s32-0123abcd/s1.h5"
    variants = [augment.variants(_array(6 + i, (48, 48, 2)) - 0.5,
                                 (_array(9 + i, (48, 48)) * 255).astype(np.uint8), 32)
                for i in range(2)]  # fmt: skip
    shards.write_shard(path, "s1", ["s1_c0", "s1_c1"], [0, 1], variants, ["a", "b"], {}, {})
    return path


def _tensors() -> dict:
    import torch

    return {"model": {"w": torch.from_numpy(_array(12, (200, 200)))}, "best_epoch": 3}


def checkpoint(folder: Path) -> Path:  # as `mer train` (learn/cli.py cmd_train) writes it
    import torch

    path = folder / "train/mscnn-0123abcd/seed0/s1/checkpoint.pt"
    with files.atomic_path(path) as tmp:
        torch.save(_tensors(), tmp)
    return path


def resume(folder: Path) -> Path:
    from mer.learn import resume

    path = folder / "train/mscnn-0123abcd/seed0/s1/resume.pt"
    resume.save_resume(path, _tensors())
    return path


def report(folder: Path) -> Path:  # as evaluation.summary.write_summary writes summary.md
    path = folder / "summary.md"
    files.write_text_atomic(path, "| experiment | UF1 |\n" + "| mscnn | 0.5 |\n" * 8000)
    return path


def subject_shards(folder: Path, subjects=("s1", "s2", "s3")) -> list[Path]:
    """Three subjects' shards of three classes (random fields) to train a fold on."""
    from mer.learn import augment, shards

    paths = []
    for n, subject in enumerate(subjects):
        samples = [f"{subject}_c{i}" for i in range(3)]
        variants = [augment.variants(_array(20 + 3 * n + i, (48, 48, 2)) - 0.5,
                                     (_array(40 + 3 * n + i, (48, 48)) * 255).astype(np.uint8), 32)
                    for i in range(3)]  # fmt: skip
        paths.append(folder / f"{subject}.h5")
        shards.write_shard(
            paths[-1], subject, samples, [0, 1, 2], variants, ["a", "b", "c"], {}, {}
        )
    return paths


WRITERS = {f.__name__: f for f in (evm, flow, masks, shard, checkpoint, resume, report)}


def main() -> None:
    kind, disk, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    outcome = {"error": None}
    try:
        WRITERS[kind](disk)
    except Exception as error:
        outcome.update(error=str(error), type=type(error).__name__, errno=error.errno)
    outcome["left"] = sorted(str(p.relative_to(disk)) for p in disk.rglob("*") if p.is_file())
    subprocess.run(["mount", "-o", "remount,rw,size=64m", str(disk)], check=True)
    path = WRITERS[kind](disk)
    shutil.copy(path, out / path.name)
    outcome["rerun"] = str(path.relative_to(disk))
    print(json.dumps(outcome))


if __name__ == "__main__":
    main()
