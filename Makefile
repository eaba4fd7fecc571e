# nnpot — set-up and run. Every target installs what it needs first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
THREADS ?= 2
# OpenMP threads that spin while they wait cost 30x on a busy machine: let them sleep
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install demo test bench lint clean help

help:
	@echo "make demo   install everything, train on the shipped water data, run MD, write a report"
	@echo "make test   install everything and run the whole test suite (+ import rules)"
	@echo "make bench  benchmarks against peers (TorchANI, dscribe); results in benchmarks/results"
	@echo "make lint   ruff + import-linter"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# No NVIDIA GPU: take the pinned CPU build of torch first, so nothing pulls a multi-GB CUDA build.
	if ! command -v nvidia-smi >/dev/null 2>&1; then $(PIP) install --quiet "torch==2.13.0"; fi
	$(PIP) install --quiet -e ".[test,oracles,bench]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	OMP_NUM_THREADS=$(THREADS) $(VENV)/bin/nnpot demo --out demo-report

test: $(STAMP)
	$(VENV)/bin/lint-imports
	OMP_NUM_THREADS=1 $(PY) -m pytest -n $(THREADS) -q tests

bench: $(STAMP)
	OMP_NUM_THREADS=$(THREADS) $(PY) benchmarks/run.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) demo-report .pytest_cache
