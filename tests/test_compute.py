"""The compute modes: what each sets for torch and OpenCV before they load, and the
fingerprint fields that decide whether two results can agree bit for bit."""

import pytest

from mer import compute


@pytest.fixture
def clean_environment(monkeypatch):
    for name in [*compute.PORTABLE_ENV, compute.MODE_VARIABLE, "OPENCV_CPU_DISABLE"]:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_portable_caps_the_kernels_and_fast_undoes_it(clean_environment):
    import os

    assert compute.select() == "portable"  # the default
    assert {k: os.environ[k] for k in compute.PORTABLE_ENV} == compute.PORTABLE_ENV
    assert compute.math_threads(8) == compute.PORTABLE_THREADS
    assert compute.select("fast") == "fast"
    assert not set(compute.PORTABLE_ENV) & set(os.environ)
    assert compute.math_threads(8) == 8


def test_fast_keeps_kernel_choices_a_user_made(clean_environment):
    import os

    clean_environment.setenv("ATEN_CPU_CAPABILITY", "avx512")
    compute.select("fast")
    assert os.environ["ATEN_CPU_CAPABILITY"] == "avx512"


def test_an_unknown_mode_is_refused(clean_environment):
    with pytest.raises(ValueError, match="portable"):
        compute.select("turbo")


def test_opencv_is_kept_off_avx512_only_where_the_cpu_has_it(clean_environment):
    import os

    compute.cap_opencv()
    disabled = os.environ.get("OPENCV_CPU_DISABLE")
    assert (disabled is not None) == ("avx512f" in compute.cpu_flags())
    clean_environment.setenv("OPENCV_CPU_DISABLE", "")  # a user's own choice stays
    compute.cap_opencv()
    assert os.environ["OPENCV_CPU_DISABLE"] == ""


RECORD = {
    "mode": "portable", "cpu_family": "x86-64-avx2", "cpu_model": "A", "kernel_isa": "AVX2",
    "device": "cpu", "threads": 1, "precision": "fp32", "torch": "2.14.1", "onednn": "3.12.0",
    "mkl": "2024.2", "mer": "0.1.0", "commit": "abc", "cuda": None, "cudnn": None,
}  # fmt: skip


def test_portable_results_compare_by_cpu_family_not_model():
    other_cpu = {**RECORD, "cpu_model": "B", "threads": 4}
    assert compute.comparable_key(other_cpu) == compute.comparable_key(RECORD)
    assert compute.comparable_key({**RECORD, "torch": "2.15.0"}) != compute.comparable_key(RECORD)


def test_fast_results_compare_only_on_the_same_cpu_model_and_threads():
    fast = {**RECORD, "mode": "fast", "kernel_isa": "AVX512"}
    assert compute.comparable_key({**fast, "cpu_model": "B"}) != compute.comparable_key(fast)
    assert compute.comparable_key({**fast, "threads": 2}) != compute.comparable_key(fast)


def test_the_description_names_mode_machine_and_libraries():
    text = compute.described(RECORD)
    for part in ("portable mode", "x86-64-avx2", "AVX2", "torch 2.14.1", "oneDNN 3.12.0", "abc"):
        assert part in text


def test_portable_mode_on_cuda_sets_the_deterministic_modes(clean_environment):
    """The CUDA branch, run on the CPU machine (nothing is computed on the device)."""
    import torch

    saved = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    try:
        compute.select("portable")
        compute.configure(torch.device("cuda"), 4)
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert torch.are_deterministic_algorithms_enabled()
        compute.select("fast")
        compute.configure(torch.device("cuda"), 4)
        assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.deterministic
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved
        compute.select("portable")


def test_a_portable_fold_refuses_kernels_chosen_before_the_mode(clean_environment):
    import torch

    if compute.cpu_family() != compute.PORTABLE_FAMILY:
        pytest.skip("the AVX2 cap applies to x86-64 CPUs with AVX2")
    compute.select("portable")
    clean_environment.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    with pytest.raises(ValueError, match="Import mer before using torch"):
        compute.configure(torch.device("cpu"), 1)


FAULTS_PER_STEP = """
import resource, sys
import numpy as np
from mer import compute
if sys.argv[1] == "keep":
    compute.keep_freed_memory()
def step():  # a training step's weight-sized gradients: allocated, written, freed together
    held = [np.ones(2**20) for _ in range(4)]  # 4 x 8 MiB
    del held
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(
    __import__("platform").libc_ver()[0] != "glibc", reason="keep_freed_memory tunes glibc malloc"
)
def test_freed_blocks_stay_in_the_heap_instead_of_being_faulted_in_again():
    import subprocess
    import sys

    def page_faults(mode: str) -> int:
        run = [sys.executable, "-c", FAULTS_PER_STEP, mode]
        return int(subprocess.run(run, capture_output=True, text=True, check=True).stdout)

    # By default glibc gives the freed blocks back and faults them in again, page by page
    # (10 steps x 32 MiB = 81,920 pages of 4 KiB if every one were returned).
    assert page_faults("default") > 5_000
    assert page_faults("keep") < 500
