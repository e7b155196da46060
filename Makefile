# warpinv: `make test` and `make bench` work on a fresh clone with nothing but Python >= 3.10.
# Both create .venv when missing and (re)install the package only when pyproject.toml changed.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.stamp-install
SUITE  ?= default default_ood
ARGS   ?=

.PHONY: test test-fast lint bench bench-results train-tiny perf perf-official perf-hfgi3d perf-in-n-out perf-e3dge \
	quirks-in-n-out clean-venv help

help:
	@echo "make test            run the test suite and the doctests of warpinv/ (creates .venv on first use)"
	@echo "make lint            ruff check of warpinv, tests and benchmarks (rules in pyproject.toml)"
	@echo "make bench           run the default benchmark (suites default and default_ood) on the embedded tiny generator (SUITE=celebahq for the real one)"
	@echo "make bench-results   copy runs/bench/<suite>'s tables and grids into benchmarks/results/<suite> for each suite of SUITE"
	@echo "make train-tiny      retrain the encoders of the tiny generator (E3DGE, WarpGAN) -> checkpoints/*_tiny.safetensors (CPU)"
	@echo "make perf            backbone performance benchmark -> benchmarks/results/perf_backbone.json"
	@echo "make perf-official   ours vs the official EG3D side by side (OFFICIAL=path/to/eg3d) -> benchmarks/results/perf_versus_official.*"
	@echo "make perf-hfgi3d     HFGI3D per-image cost -> benchmarks/results/perf_hfgi3d.json (ARGS='--views 2' on a CPU)"
	@echo "make perf-in-n-out   In-N-Out per-step and per-image cost -> benchmarks/results/perf_in_n_out.json"
	@echo "make perf-e3dge      encoder images/second vs the optimisation methods -> benchmarks/results/perf_e3dge.json"
	@echo "make quirks-in-n-out In-N-Out's released quirks vs their corrections -> benchmarks/results/in_n_out_quirks.json"

$(PY):
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "warpinv needs Python >= 3.10, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

test: $(STAMP)
	WANDB_MODE=disabled $(PY) -m pytest $(ARGS)

test-fast: $(STAMP)
	WANDB_MODE=disabled $(PY) -m pytest -m "not slow" $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check warpinv tests benchmarks

# `make bench` runs experiments/bench/<suite>.yaml for each suite of $(SUITE) (default: `default`, every method on the
# tiny generator's synthetic multi-view set, then `default_ood`, W+, PTI and In-N-Out on its occluded variant) into
# runs/bench/<suite>; ARGS takes dotted overrides and --devices N.
bench: $(STAMP)
	@for suite in $(SUITE); do $(PY) -m warpinv bench experiments/bench/$$suite.yaml $(ARGS) || exit 1; done

# Copy each finished run's tables, provenance, timing and grid images into benchmarks/results/<suite>.
bench-results: $(STAMP)
	@for suite in $(SUITE); do $(PY) benchmarks/publish.py runs/bench/$$suite benchmarks/results/$$suite || exit 1; done

# The E3DGE-style encoder of the tiny generator, trained on 2 CPU cores and exported to checkpoints/ (what `make bench`
# loads). Same command, same machine class: the same weights bit for bit. A previous run folder is replaced.
train-tiny: $(STAMP)
	rm -rf runs/train/e3dge_tiny runs/train/warpgan_tiny
	$(PY) -m warpinv train experiments/train/e3dge_tiny.yaml $(ARGS)
	$(PY) -m warpinv train experiments/train/warpgan_tiny.yaml $(ARGS)

perf: $(STAMP)
	$(PY) benchmarks/perf/backbone.py $(ARGS)

# Our generator and the official EG3D code side by side (same weights, interleaved calls); needs a checkout of
# NVlabs/eg3d (git clone https://github.com/NVlabs/eg3d ../eg3d). The README's speed figures come from its result.
OFFICIAL ?= ../eg3d
perf-official: $(STAMP)
	$(PY) benchmarks/perf/versus_official.py --official $(OFFICIAL) $(ARGS)

# HFGI3D's per-image cost: pseudo views (measured) and the stages (per-step costs, extrapolated).
perf-hfgi3d: $(STAMP)
	$(PY) benchmarks/perf/hfgi3d.py $(ARGS)

# In-N-Out's per-step costs (measured) and seconds per image (extrapolated), tiny and ffhq512-128.
perf-in-n-out: $(STAMP)
	$(PY) benchmarks/perf/in_n_out.py $(ARGS)

# Encoder throughput (images per second, one forward pass) beside the optimisation methods' seconds per image.
perf-e3dge: $(STAMP)
	$(PY) benchmarks/perf/e3dge.py $(ARGS)

# What each of In-N-Out's released quirks changes in its renders (fixture inputs and a tiny-generator fit).
quirks-in-n-out: $(STAMP)
	$(PY) benchmarks/in_n_out_quirks.py $(ARGS)

clean-venv:
	rm -rf $(VENV)
