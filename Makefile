# Set-up and common jobs. `make demo` and `make test` do the whole set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Installing torch==2.13.0 first takes the CPU build from local disk; an unpinned torch
# would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?= -n 2

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m molgraph.cli.main demo

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS) -m "not slow"

bench: $(STAMP)
	$(PY) benchmarks/featurize.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
