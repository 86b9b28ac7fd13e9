# The two commands of the README:
#   make run    set up .venv (pinned) and run the whole workflow on the embedded default data
#   make test   set up .venv (pinned) and run the test suite
# Other targets: make report (run, then results/report.html), make smoke (tiny end-to-end run),
# make notebooks (install JupyterLab on first use, then open the executed notebooks of a run),
# make cluster-test (the workflow through a real loopback Slurm; root on Debian), make lint,
# make dry-run, make lock.

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
# Rules call papermill and python from the environment: put it first on PATH.
export PATH := $(BIN):$(PATH)
# One torch thread per worker is set where it matters; keep BLAS from oversubscribing 2 cores.
export OMP_NUM_THREADS ?= 2
# Every rule and test is a fresh Python process: with PYTHONDONTWRITEBYTECODE set (some CI
# images set it), each one recompiled torch, torch_geometric and pymatgen from source, 10-17 s
# per job. The venv is installed --no-compile, so the first import writes the bytecode once.
unexport PYTHONDONTWRITEBYTECODE

SNAKEMAKE := $(BIN)/snakemake --profile profiles/local
CONFIGS := config/config.yaml config/smoke.yaml config/paper.yaml

.PHONY: run test report smoke notebooks cluster-test lint dry-run lock clean-results

# --no-compile: byte-compiling all of torch, scipy and pymatgen up front took half the set-up
# (3:00 -> 1:33 measured); Python compiles what is imported on first use instead.
# --no-deps for the lock: it is complete (a pip freeze), so there is nothing to resolve.
PIP_INSTALL := $(BIN)/pip install --quiet --disable-pip-version-check --no-compile

$(VENV)/.installed: requirements/lock.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) torch==2.13.0
	$(PIP_INSTALL) --no-deps -r requirements/lock.txt
	$(PIP_INSTALL) --no-deps -e .
	touch $@

run: $(VENV)/.installed
	$(SNAKEMAKE)

# One pytest process: the smoke run keeps both cores busy, so a second xdist worker only slowed
# it (measured: smoke fixture 600 s instead of ~240 s, and the Slurm test timed out).
test: $(VENV)/.installed
	$(BIN)/python -m pytest

report: $(VENV)/.installed
	$(SNAKEMAKE)
	$(SNAKEMAKE) --report results/report.html

smoke: $(VENV)/.installed
	$(SNAKEMAKE) --configfile config/smoke.yaml

# The executed copies of a run's notebooks (CONFIG names the run, default config/config.yaml):
# `make notebooks`, or `make notebooks CONFIG=config/smoke.yaml` after `make smoke`.
CONFIG ?= config/config.yaml
# JupyterLab is pinned apart (requirements/notebooks.txt) and installed on first use.
$(VENV)/.jupyterlab: $(VENV)/.installed requirements/notebooks.txt
	$(PIP_INSTALL) -r requirements/notebooks.txt
	touch $@

notebooks: $(VENV)/.jupyterlab
	@folder="$$($(BIN)/python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["output_dir"])' $(CONFIG))/notebooks"; \
	test -d "$$folder" || { echo "no $$folder yet: run the workflow first (make run or make smoke)"; exit 1; }; \
	$(BIN)/jupyter lab --ServerApp.root_dir="$$folder"

cluster-test: $(VENV)/.installed
	$(BIN)/python tools/slurm_cluster_test.py

lint: $(VENV)/.installed
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/rules

dry-run: $(VENV)/.installed
	for config in $(CONFIGS); do $(BIN)/snakemake -n --quiet rules --configfile $$config || exit 1; done

lock: $(VENV)/.installed
	$(BIN)/pip freeze --exclude-editable | grep -v '^torch==' \
		| grep -v -i -x -F -f requirements/notebooks.txt > requirements/lock.txt.new
	mv requirements/lock.txt.new requirements/lock.txt

clean-results:
	rm -rf results
