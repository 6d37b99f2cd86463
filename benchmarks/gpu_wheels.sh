#!/usr/bin/env bash
# Build the wheel bundle that benchmarks/gpu_check.sh installs on a GPU machine without
# network: the packages of benchmarks/gpu_wheels.txt, into benchmarks/wheels/ (not in git;
# the device tool carries it). Needs the package index; prints the bundle's size.
# Usage: bash benchmarks/gpu_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
dest=benchmarks/wheels
rm -rf "$dest"
mkdir -p "$dest"
compiled="PyYAML regex safetensors charset-normalizer"
reqs=$(grep -v '^#' benchmarks/gpu_wheels.txt | grep -v '^$')
pure=$(echo "$reqs" | grep -v -i -E "^($(echo $compiled | tr ' ' '|'))==")
$PY -m pip download -q --no-deps --only-binary=:all: -d "$dest" $pure
for version in 3.10 3.11 3.12 3.13; do
  $PY -m pip download -q --no-deps --only-binary=:all: --python-version "$version" \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$dest" \
    $(echo "$reqs" | grep -i -E "^($(echo $compiled | tr ' ' '|'))==")
done
cp benchmarks/gpu_wheels.txt "$dest/requirements.txt"
echo "wheel bundle: $(ls "$dest"/*.whl | wc -l) wheels, $(du -sm "$dest" | cut -f1) MiB in $dest"
