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

.PHONY: install demo test test-slow bench bench-featurize bench-property bench-conformers bench-ngram bench-graphnorm \
	bench-certify bench-caw bench-cormorant bench-confgen bench-graphcnf bench-uncertainty bench-techniques clean

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

# The methods' benchmarks (not part of `make bench`: each takes 10-60 minutes on 2 cores). Each
# docs page gives the full protocol and the other rows; these are the headline runs.
BENCH_ENV := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

# collective certificates: stage 1 and speed on Cora-ML/Citeseer (docs/certificates.md, ~7 min)
bench-certify: $(STAMP)
	$(BENCH_ENV) $(PY) benchmarks/certify.py

# CAW-N with EdgeBank, TGN and the node-id ablation on UCI (docs/caw.md)
bench-caw: $(STAMP)
	$(BENCH_ENV) $(PY) benchmarks/caw.py --dataset uci --epochs 3 --out benchmarks/results/caw_uci_3epochs.json

# Cormorant against a linear fit and SchNet, 300 s each: QM9 U0 at 10k molecules, rMD17 aspirin (docs/cormorant.md)
bench-cormorant: $(STAMP)
	$(BENCH_ENV) $(PY) benchmarks/cormorant.py qm9 --target U0 --n-train 10000 --levels 3 --lmax 1 --budget-s 300 \
		--out benchmarks/results/cormorant_qm9_U0_lmax1_10k.json
	$(BENCH_ENV) $(PY) benchmarks/cormorant.py rmd17 --molecule aspirin --budget-s 300 \
		--out benchmarks/results/cormorant_rmd17_aspirin.json

# CGCF against ETKDG(+MMFF) on QM9 DFT recovery, rMD17 and the GEOM-Drugs sample; needs a model from
# `molgraph cgcf train` (docs/cgcf.md): make bench-confgen CGCF_MODEL=runs/cgcf_qm9_a2
CGCF_MODEL ?= runs/cgcf_qm9_a2
bench-confgen: $(STAMP)
	$(BENCH_ENV) $(PY) benchmarks/confgen.py --model $(CGCF_MODEL) --parts qm9 rmd17 geom --limit 100 --k 10 --pool 50 \
		--langevin-steps 0 --cgcf-pool 30 --hybrid-scores energy mmff --hybrid-prune 0.5 --rmd17-frames 50 \
		--output benchmarks/results/confgen_attempt2.json

# GraphCNF: 25 minutes of training on MOSES (<= 15 heavy atoms), then likelihood, samples and their metrics
# (docs/graphcnf.md)
bench-graphcnf: $(STAMP)
	$(BENCH_ENV) $(PY) benchmarks/graphcnf.py --time-limit 25 --batch-size 32 --steps-per-epoch 200 --val-samples 100 \
		--max-atoms 15 --run-dir runs/graphcnf_bench --part cpu_attempt3_max15_exact

# uncertainty heads against chemprop v2's on the same splits, and --compile's speed (docs/uncertainty.md)
bench-uncertainty: $(STAMP) $(CHEMPROP_STAMP)
	$(BENCH_ENV) $(PY) benchmarks/property_uncertainty.py --parts uncertainty --datasets esol --methods mve --seeds 0 1 2 \
		--merge-seeds --epochs 30 --chemprop-python $(CHEMPROP_VENV)/bin/python
	$(BENCH_ENV) $(PY) benchmarks/property_uncertainty.py --parts compile --compile-dataset esol --compile-models dmpnn gin \
		--compile-epochs 4

# AdamP/SGDP, Hopfield pooling, task grouping, encoders, the graph transformer (docs/techniques.md)
bench-techniques: $(STAMP)
	$(BENCH_ENV) $(PY) benchmarks/techniques.py --sections hopfield,adamp --seeds 3 --epochs-small 10 --epochs-tox21 4
	$(BENCH_ENV) $(PY) benchmarks/techniques_transformer.py --only a b
