#!/usr/bin/env bash
# The GPU acceptance check: run it first on any GPU machine, before a cluster trains anything.
# It needs no network: the machine's own Python and PyTorch (2.11 or newer), this checkout, and
# the wheel bundle benchmarks/wheels/ (built beforehand where the package index is reachable:
# `bash benchmarks/gpu_wheels.sh`, about 15 MiB), installed into OUT/site. Without the bundle
# it uses what the Python already has (e.g. PYTHON=.venv/bin/python).
#
# Usage: bash benchmarks/gpu_check.sh [OUT]            (default OUT: gpu-check)
#   PYTHON=python3            the interpreter whose PyTorch is used
#   GPU_CHECK_BUDGET_S=390    no row starts after this many seconds (8 minutes on one H100 in all)
#   GPU_CHECK_DEVICE=auto     cpu runs the reduced check (toy recipes; CI runs it so)
#
# Writes, as it goes: OUT/versions.txt (nvidia-smi, Python, PyTorch), OUT/env.json,
# OUT/rows.jsonl and OUT/acceptance.json (a row per recipe and precision: step time, peak memory,
# fits 40/80 GB, evaluation at real image sizes), and at the end OUT/summary.md, the table for
# docs/performance.md. A timeout keeps every finished row.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-gpu-check}" && cd "${1:-gpu-check}" && pwd)
PY=${PYTHON:-python3}
budget=${GPU_CHECK_BUDGET_S:-390}
device=${GPU_CHECK_DEVICE:-auto}
cd "$repo"

{
  echo "date: $(date -u +%FT%TZ)"
  nvidia-smi 2>&1 || echo "nvidia-smi: not available"
  "$PY" -c 'import platform, torch; print("python", platform.python_version()); print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "cuda available", torch.cuda.is_available())'
} > "$out/versions.txt" 2>&1
cat "$out/versions.txt"

if compgen -G "benchmarks/wheels/*.whl" > /dev/null; then
  echo "gpu check: installing the wheel bundle into $out/site"
  "$PY" -m pip install --quiet --no-index --no-deps --find-links benchmarks/wheels \
    --target "$out/site" -r benchmarks/wheels/requirements.txt || {
      echo "gpu check: the wheel bundle does not install here (see above)"; exit 1; }
  export PYTHONPATH="$out/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1

"$PY" -c 'import semivl.bench.acceptance' || {
  echo "gpu check: the project does not import with this Python (a package missing from" \
       "benchmarks/gpu_wheels.txt?)"; exit 1; }
exec "$PY" -m semivl.cli bench --acceptance "$out" --budget-s "$budget" --device "$device"
