#!/usr/bin/env bash
# The CUDA path, measured: run on a machine with an NVIDIA GPU, in the environment README's
# install makes (python3 -m venv .venv && . .venv/bin/activate && pip install -e .):
#     bash benchmarks/gpu_check.sh
# 1. the smoke workflow end to end (README's first command on workflow/configs/smoke.yaml),
#    checking that every fold trained on CUDA with mixed precision (fold.json), twice: portable
#    mode's deterministic cuDNN/cuBLAS must give the same predictions (mer compare-results);
# 2. the training step of benchmarks/bench_train.py part (c) on CUDA at 64 and 112 px:
#    samples/s and peak memory, fp32 against the default precision (fp16 AMP).
# Paste its output into docs/training.md ("Speed") with the date and the GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
python - <<'PY'
import sys

import torch

if not torch.cuda.is_available():
    sys.exit("gpu_check.sh needs a CUDA device (torch.cuda.is_available() is False); "
             "run it on a GPU machine")
print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
PY
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
start=$(date +%s)
snakemake --cores "$(nproc)" --configfile workflow/configs/smoke.yaml \
    --config results="$results" --quiet
echo "smoke workflow on CUDA: $(( $(date +%s) - start )) s wall, report $(ls "$results"/*/report.html)"
python - "$results" <<'PY'
import json
import sys
from pathlib import Path

folds = [json.loads(p.read_text()) for p in Path(sys.argv[1]).glob("*/train/*/*/*/fold.json")]
used = sorted({(f["device"], f["precision"]) for f in folds})
print(f"{len(folds)} folds trained on (device, precision): {used}")
if not folds or used != [("cuda", "fp16")]:
    sys.exit("expected every fold on cuda with fp16 AMP")
print("compute:", sorted({f["compute"]["mode"] + " on " + f["compute"]["device"] for f in folds}))
PY
# Portable mode on CUDA (deterministic cuDNN and cuBLAS): a second run must predict the same.
again=$(mktemp -d)
trap 'rm -rf "$results" "$again"' EXIT
snakemake --cores "$(nproc)" --configfile workflow/configs/smoke.yaml \
    --config results="$again" --quiet
mer compare-results "$results/smoke" "$again/smoke" || echo "CUDA runs differ: see above"
for size in 64 112; do
    python benchmarks/bench_train.py --device cuda --parts c --size "$size" --repeats 20
done
