# make setup | demo | test | lint | docs. Everything runs inside .venv (created on first use).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2
export PATH := $(abspath $(BIN)):$(PATH)
export HF_HUB_OFFLINE := 1

.PHONY: setup demo demo-full demo-quick sweep test test-fast lint docs clean-demo

setup: $(STAMP)

# Plain pip on purpose: it takes the torch wheels lying on this disk (see README).
# pip byte-compiles every module (about 100 s of the install) on purpose: with
# PYTHONDONTWRITEBYTECODE set, as on the project's machines, `--no-compile` makes every process
# compile torch again on import (8 s a process); measured, the two came out even
# (docs/performance.md, "The demo").
# The pinned torch is a CUDA 13 build: it needs NVIDIA driver 580 or newer. For an older
# driver, install the same torch built for an older CUDA from PyTorch's wheel index first:
#   make setup TORCH_INDEX=https://download.pytorch.org/whl/cu126   (driver 525 or newer)
# (`semivl train` names the driver it finds when CUDA is not usable.)
TORCH_INDEX ?=
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	@echo "Installing into $(VENV) (about 4 minutes on a fresh machine; log: $(VENV)/pip.log)"
	$(if $(TORCH_INDEX),$(BIN)/pip install -q $(TORCH_PINS) --index-url $(TORCH_INDEX) > $(VENV)/pip.log 2>&1 || { tail -40 $(VENV)/pip.log; exit 1; })
	$(BIN)/pip install -q -e '.[test]' >> $(VENV)/pip.log 2>&1 || { tail -40 $(VENV)/pip.log; exit 1; }
	$(BIN)/python -c 'import semivl, torch, open_clip, snakemake, dvc'
	touch $(STAMP)

# The time printed comes from the last measured run (docs/measured/demo.json; README,
# Requirements; benchmarks/demo_time.py). Each run stamps its own time in results/demo/timing.json.
demo: $(STAMP)
	@echo "Running the demo: $$($(BIN)/python benchmarks/demo_time.py announce docs/measured/demo.json)."
	@echo "Snakemake prints 'N of M steps done' after each job and a line per finished training run."
	@start=$$(date +%s); \
	$(BIN)/snakemake all --cores $(CORES) --configfile config/demo.yaml && \
	$(BIN)/snakemake --configfile config/demo.yaml --report results/demo/report.html && \
	$(BIN)/python benchmarks/demo_time.py stamp results/demo $$start
	@echo "Demo done: results/demo/tables.md, results/demo/figures/ and results/demo/report.html"

# The demo plus the component ablation and UniMatch V2 (config/demo_full.yaml), in results/demo_full/.
demo-full: $(STAMP)
	@echo "Running the full miniature: $$($(BIN)/python benchmarks/demo_time.py announce docs/measured/demo_full.json)."
	@start=$$(date +%s); \
	$(BIN)/snakemake all --cores $(CORES) --configfile config/demo_full.yaml && \
	$(BIN)/snakemake --configfile config/demo_full.yaml --report results/demo_full/report.html && \
	$(BIN)/python benchmarks/demo_time.py stamp results/demo_full $$start
	@echo "Full miniature done: results/demo_full/tables.md"

# Tune every toy recipe on the toy's dev images with one budget (config/sweeps/toy.yaml):
# writes docs/sweeps/toy.{csv,md}. Needs the toy data, tiny CLIP and texts that make demo makes.
sweep: $(STAMP)
	$(BIN)/semivl sweep config/sweeps/toy.yaml --jobs $(CORES)

# The baselines on one split and seed, no CLIP pretraining: a few minutes (CI runs it).
demo-quick: $(STAMP)
	$(BIN)/snakemake all --cores $(CORES) --configfile config/demo_quick.yaml
	@echo "Quick demo done: results/demo_quick/tables.md"

test: $(STAMP)
	$(BIN)/pytest

test-fast: $(STAMP)
	$(BIN)/pytest -m 'not slow'

# ruff's rules and format, and the import contract (pyproject.toml, [tool.importlinter]:
# layers, no cycles, the engine names no method, grids and plan import no torch).
lint: $(STAMP)
	$(BIN)/ruff check semivl baselines tests benchmarks tools
	$(BIN)/ruff format --check semivl baselines tests benchmarks tools
	$(BIN)/lint-imports

# The generated parts of the README and the docs (times, counts, costs, published targets,
# findings, the CLI and config references), each from its one source (tools/docgen/sections.py).
# tests/test_docs.py fails while a part is stale: run this and commit the result.
docs: $(STAMP)
	$(BIN)/python tools/make_docs.py

clean-demo:
	rm -rf results/demo results/demo_full results/demo_quick data/toy data/splits/toy
