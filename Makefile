# warpinv: `make test` and `make bench` work on a fresh clone with nothing but Python >= 3.10.
# Both create .venv when missing and (re)install the package only when pyproject.toml changed.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.stamp-install
SUITE  ?= default
ARGS   ?=

.PHONY: test test-fast bench perf clean-venv help

help:
	@echo "make test            run the test suite (creates .venv on first use)"
	@echo "make bench           run the default benchmark on the embedded tiny generator"
	@echo "make perf            backbone performance benchmark -> benchmarks/results/perf_backbone.json"

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

# Until the benchmark harness exists, `make bench` runs the backbone performance benchmark on tiny.
bench: $(STAMP)
	$(PY) benchmarks/perf/backbone.py --configs tiny --out runs/perf_backbone_tiny.json $(ARGS)

perf: $(STAMP)
	$(PY) benchmarks/perf/backbone.py $(ARGS)

clean-venv:
	rm -rf $(VENV)
