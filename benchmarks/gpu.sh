#!/usr/bin/env bash
# The GPU measurement recorded in docs/performance.md: every method's recipe of the grid at its
# crop and per-GPU batch, plus the tiny configuration, the loaders, evaluation, the speed
# options (torch.compile included) and the workflow overhead. Writes
# benchmarks/results/<gpu>-<date>.json. Usage: bash benchmarks/gpu.sh [grid file]
set -euo pipefail
cd "$(dirname "$0")/.."
grid="${1:-config/config.yaml}"
name=$(python -c 'import torch; print(torch.cuda.get_device_name(0).replace(" ", "-"))')
out="benchmarks/results/${name}-$(date +%F).json"
semivl bench --grid "$grid" --device cuda --out "$out" > /dev/null
semivl plan --grid "$grid" --bench "$out"
