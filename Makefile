# warpinv: `make test` and `make bench` work on a fresh clone with nothing but Python >= 3.10.
# Both create .venv when missing and (re)install the package only when pyproject.toml changed.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.stamp-install
SUITE  ?= default
ARGS   ?=

.PHONY: test test-fast lint bench bench-results perf perf-hfgi3d clean-venv help

help:
	@echo "make test            run the test suite and the doctests of warpinv/ (creates .venv on first use)"
	@echo "make lint            ruff check of warpinv, tests and benchmarks (rules in pyproject.toml)"
	@echo "make bench           run the default benchmark on the embedded tiny generator (SUITE=celebahq for the real one)"
	@echo "make bench-results   copy runs/bench/\$$SUITE's tables and grids into benchmarks/results/\$$SUITE"
	@echo "make perf            backbone performance benchmark -> benchmarks/results/perf_backbone.json"
	@echo "make perf-hfgi3d     HFGI3D per-image cost -> benchmarks/results/perf_hfgi3d.json (ARGS='--views 2' on a CPU)"

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

# `make bench` runs experiments/bench/$(SUITE).yaml (default: every method on the tiny generator's
# synthetic multi-view set) into runs/bench/$(SUITE); ARGS takes dotted overrides and --devices N.
bench: $(STAMP)
	$(PY) -m warpinv bench experiments/bench/$(SUITE).yaml $(ARGS)

# Copy a finished run's tables, provenance, timing and grid images into benchmarks/results/$(SUITE).
bench-results: $(STAMP)
	$(PY) benchmarks/publish.py runs/bench/$(SUITE) benchmarks/results/$(SUITE)

perf: $(STAMP)
	$(PY) benchmarks/perf/backbone.py $(ARGS)

# HFGI3D's per-image cost: pseudo views (measured) and the stages (per-step costs, extrapolated).
perf-hfgi3d: $(STAMP)
	$(PY) benchmarks/perf/hfgi3d.py $(ARGS)

clean-venv:
	rm -rf $(VENV)
