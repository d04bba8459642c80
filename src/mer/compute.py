"""How a mer process computes: the portable mode (default) or the fast one, and the
fingerprint of what computed a result.

portable: the same bits on every x86-64 CPU with AVX2, whatever threads a job was given:
ATen, oneDNN and MKL kernels capped at AVX2, fp32, one intra-op thread for the math (a
kernel's result depends on how its work is split over threads). On CUDA: cuDNN and cuBLAS in
their deterministic modes, reproducible on the same GPU model and software only.
fast: the machine's own kernels (AVX-512, AMX and bf16 where present) and all of the job's
threads; results then depend on the CPU model and the thread count.
OpenCV's AVX-512 code is off in every mode (its DeepFlow gives other bits there), so the
preprocessing artifacts are the same on every such CPU.

Both libraries read these choices from the environment when they load or first compute, so
importing `mer` applies them (mode $MER_COMPUTE, default portable) and the torch verbs select
their `--compute` before importing torch. How they were chosen and what they cost:
docs/training.md, "Same numbers on every machine". Imports neither torch nor OpenCV at load.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

MODES = ("portable", "fast")
MODE_VARIABLE = "MER_COMPUTE"
PORTABLE_ENV = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "AVX2,STRICT",
    # cuBLAS's deterministic workspace; read when CUDA starts, ignored on CPU.
    "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
}
PORTABLE_THREADS = 1
# Raised when a release changes the bits a fold computes from the same settings (another
# kernel or optimiser implementation). Training keys include it, so a results folder of an
# earlier release retrains its folds instead of mixing them with this release's.
TRAINING_NUMERICS = 2
# The family whose CPUs compute identical bits in portable mode.
PORTABLE_FAMILY = "x86-64-avx2"
# CPU features that decide which kernels run (as /proc/cpuinfo names them).
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")


# glibc's mallopt parameters (malloc.h), and the largest mmap threshold it accepts on 64 bit.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_HEAP_BLOCK_BYTES = 32 * 2**20


def keep_freed_memory() -> None:
    """Keep freed blocks up to 32 MiB in the process's heap (glibc). A training step frees and
    allocates weight-sized gradients every step; by default glibc hands such blocks back to
    the kernel and faults them in again page by page. Numbers are unaffected; the process
    keeps its peak memory. Without glibc (macOS, musl) nothing happens."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None and platform.libc_ver()[0] == "glibc":
        mallopt(_M_MMAP_THRESHOLD, _HEAP_BLOCK_BYTES)
        mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)


def cap_opencv() -> None:
    """Keep OpenCV on its AVX2 code: its AVX-512 dispatch (present on this CPU only; naming an
    absent feature makes OpenCV warn) computes other bits than the AVX2 path."""
    if "avx512f" in cpu_flags() and "OPENCV_CPU_DISABLE" not in os.environ:
        groups = ["AVX512-SKX"] + ["AVX512-ICL"] * ("avx512_vbmi2" in cpu_flags())
        os.environ["OPENCV_CPU_DISABLE"] = ",".join(groups)


def mode() -> str:
    """The mode this process selected (portable unless $MER_COMPUTE says fast)."""
    return os.environ.get(MODE_VARIABLE, "portable")


def select(requested: str | None = None) -> str:
    """Set the kernel choices of `requested` (default: $MER_COMPUTE, else portable) for torch,
    which must not have computed anything yet; returns the mode."""
    requested = requested or mode()
    if requested not in MODES:
        raise ValueError(f"compute mode {requested!r}: must be one of {MODES}")
    if requested == "portable":
        os.environ.update(PORTABLE_ENV)
    else:  # undo what portable set here or in a parent mer process
        for name, value in PORTABLE_ENV.items():
            if os.environ.get(name) == value:
                del os.environ[name]
    os.environ[MODE_VARIABLE] = requested
    return requested


def add_argument(parser) -> None:
    """The --compute option of a verb that computes with torch."""
    parser.add_argument(
        "--compute",
        choices=MODES,
        default=None,
        help="portable (default): the same bits on every x86-64 CPU with AVX2 and any thread "
        "count; fast: this machine's fastest kernels and all --threads (docs/training.md)",
    )


def math_threads(job_threads: int) -> int:
    """Intra-op threads of the math: fixed in portable mode, the job's in fast mode."""
    return PORTABLE_THREADS if mode() == "portable" else job_threads


def configure(device, job_threads: int) -> None:
    """Apply the selected mode to torch for `device`; refuse a portable run whose kernels
    were chosen before the mode was (torch used before mer was imported)."""
    import torch

    if device.type == "cuda":
        portable = mode() == "portable"
        torch.backends.cudnn.deterministic = portable
        torch.backends.cudnn.benchmark = not portable
        if portable:
            torch.use_deterministic_algorithms(True, warn_only=True)
        return
    torch.set_num_threads(math_threads(job_threads))
    keep_freed_memory()
    capability = torch.backends.cpu.get_cpu_capability()
    if mode() == "portable" and cpu_family() == PORTABLE_FAMILY and capability != "AVX2":
        raise ValueError(
            f"portable mode needs torch's CPU kernels capped at AVX2, but {capability} is in "
            "effect: torch computed before mer selected the mode. Import mer before using "
            "torch, or set ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_CBWR=AVX2,STRICT"
        )
    torch.use_deterministic_algorithms(True, warn_only=True)


@functools.cache
def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_family() -> str:
    """x86-64-avx2 for an x86-64 CPU with AVX2 and FMA, else the machine's name."""
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64") and {"avx2", "fma"} <= cpu_flags():
        return PORTABLE_FAMILY
    return machine or "unknown"


def git_commit() -> str | None:
    """The commit of the mer source in use (with '-dirty' for local changes), if in a git tree."""
    source = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(source), "diff", "--quiet", "HEAD", "--", "."], timeout=10
        ).returncode
    except (OSError, subprocess.TimeoutExpired):
        return None
    return commit.stdout.strip() + ("-dirty" if dirty else "")


def _mer_version() -> str:
    try:
        return importlib.metadata.version("mer")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _build_version(config: str, marker: str) -> str | None:
    """A library version from torch's build description ('... MKL-DNN v3.12.0 (...')."""
    for line in config.splitlines():
        if marker in line:
            words = line.split(marker, 1)[1].split()
            return words[0].lstrip("v").split("-")[0] if words else None
    return None


def fingerprint(device, precision: str) -> dict:
    """What computed a result: mode, CPU and its kernels, device, libraries, threads,
    precision, mer's version and commit (fold.json, metrics.json, summary.md)."""
    import torch

    build = torch.__config__.show()
    on_cuda = device.type == "cuda"
    return {
        "mode": mode(),
        "cpu_family": cpu_family(),
        "cpu_model": cpu_model(),
        "cpu_isa": " ".join(flag for flag in ISA_FLAGS if flag in cpu_flags()),
        "kernel_isa": torch.backends.cpu.get_cpu_capability(),
        "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "native"),
        "device": torch.cuda.get_device_name(device) if on_cuda else "cpu",
        "threads": torch.get_num_threads(),
        "precision": precision,
        "torch": torch.__version__,
        "onednn": _build_version(build, "MKL-DNN"),
        "mkl": _build_version(build, "Math Kernel Library Version"),
        "cuda": torch.version.cuda if on_cuda else None,
        "cudnn": torch.backends.cudnn.version() if on_cuda else None,
        "python": platform.python_version(),
        "mer": _mer_version(),
        "commit": git_commit(),
    }


def comparable_fields(record: dict) -> tuple[str, ...]:
    """The fingerprint fields two results must share to be identical bit for bit: in portable
    mode on CPU the family, not the model; otherwise the machine and threads too."""
    shared = ("mode", "device", "precision", "torch", "onednn", "mkl", "mer", "commit")
    if record.get("device") != "cpu":
        return (*shared, "cuda", "cudnn")
    if record.get("mode") == "portable" and record.get("cpu_family") == PORTABLE_FAMILY:
        return (*shared, "cpu_family")
    return (*shared, "cpu_model", "kernel_isa", "threads")


def comparable_key(record: dict) -> dict:
    return {name: record.get(name) for name in comparable_fields(record)}


def described(record: dict) -> str:
    """One line: the fingerprint as a reader checks it."""
    if record.get("device") != "cpu":
        where = f"{record['device']} (CUDA {record.get('cuda')}, cuDNN {record.get('cudnn')})"
    else:
        where = f"{record['cpu_model']} ({record['cpu_family']}, kernels {record['kernel_isa']})"
    commit = f", commit {record['commit'][:12]}" if record.get("commit") else ""
    return (
        f"{record['mode']} mode on {where}, {record['threads']} thread(s), "
        f"{record['precision']}, torch {record['torch']}, oneDNN {record.get('onednn')}, "
        f"MKL {record.get('mkl')}, mer {record['mer']}{commit}"
    )
