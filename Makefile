# Set-up and common jobs. `make demo` and `make test` do the whole set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Installing torch==2.13.0 first takes the CPU build from local disk; an unpinned torch
# would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?= -n 2

# chemprop (the benchmarks' baseline) lives in its own environment: it is not a molgraph dependency
CHEMPROP_VENV := .venv-chemprop
CHEMPROP_STAMP := $(CHEMPROP_VENV)/.installed
BENCH_JOBS ?= 2

.PHONY: install demo test test-slow bench bench-featurize bench-property bench-conformers bench-ngram bench-graphnorm clean

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

# the heavy tests (full HIV loads, the OGB scaffold split check, ...): run before resolving an issue
# that touches them
test-slow: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS) -m slow

$(CHEMPROP_STAMP): pyproject.toml
	$(PYTHON) -m venv $(CHEMPROP_VENV)
	$(CHEMPROP_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHEMPROP_VENV)/bin/python -m pip install --quiet "$(TORCH_SPEC)"
	$(CHEMPROP_VENV)/bin/python -m pip install --quiet chemprop -e .
	touch $(CHEMPROP_STAMP)

bench: bench-featurize bench-property bench-conformers bench-ngram bench-graphnorm

# featurizer speed vs RDKit, PyG and chemprop (in-process, so it runs in the chemprop environment),
# then whole processes: a PyG script vs `molgraph featurize` on HIV
bench-featurize: $(STAMP) $(CHEMPROP_STAMP)
	$(CHEMPROP_VENV)/bin/python benchmarks/featurize.py
	$(PY) benchmarks/featurize.py --whole-process --repeats 5

# accuracy vs the issue's anchors and chemprop v2 on the same splits and seeds (about an hour on 2 cores)
bench-property: $(STAMP) $(CHEMPROP_STAMP)
	$(PY) benchmarks/property.py --chemprop-python $(CHEMPROP_VENV)/bin/python --jobs $(BENCH_JOBS) --threads 1

# conformer generation speed vs RDKit and the ETKDG(+MMFF) baselines on QM9, GEOM-Drugs sample, rMD17
# (about 10 minutes on 2 cores; needs the shared data folder, or MOLGRAPH_DATA pointing at a copy)
bench-conformers: $(STAMP)
	$(PY) benchmarks/conformers.py --parts speed qm9 geom rmd17

# N-gram graph: the paper's 5-fold CV protocol and balanced-scaffold splits, Morgan and random-W
# baselines in the same run, HIV embedding speed -> benchmarks/results/ngram.json (several hours on
# 2 cores in full; run pieces with e.g. `$(PY) benchmarks/ngram.py --datasets esol --predictors rf hgb`)
bench-ngram: $(STAMP)
	$(PY) benchmarks/ngram.py --speed --n-jobs 2
	$(PY) benchmarks/ngram.py --datasets esol bbbp bace --predictors rf hgb
	$(PY) benchmarks/ngram.py --datasets tox21 clintox qm7 --predictors rf --rf-trees-classification 200 --max-steps 2000

clean:
	rm -rf $(VENV) $(CHEMPROP_VENV) build dist *.egg-info .pytest_cache

# GraphNorm: per-epoch speed vs BatchNorm, convergence by normalization (3 seeds) and 10-fold TU
# accuracy (paper and honest protocols) -> benchmarks/results/graphnorm.json and plots/ (the full
# 400-epoch protocol on all six sets takes many hours on 2 cores; see benchmarks/graphnorm.py --help)
bench-graphnorm: $(STAMP)
	$(PY) benchmarks/graphnorm.py --parts speed convergence accuracy
