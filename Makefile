# emg-lightning: every target sets up its own virtual environment on first use.
#   make train            train one leave-one-subject-out fold (synthetic data unless you pass ARGS)
#   make train ARGS="model=alsnet data=emglab data.root=/path/to/emglab-n2001-bb"
#   make test             the fast tests (unit + in-process integration, ~3 min); make test-all: everything (CI)
#   make docs             build the documentation site into site/ (mkdocs-material)
#   make lint             ruff lint + format check (CI runs it)
# Choose the torch build before the first make (it is installed once, into .venv):
#   TORCH_BUILD=pypi  (default) torch==2.13.0 from pip's configured index. From the public PyPI on Linux x86_64 that is
#                     the CUDA build (~3 GB with its nvidia-* packages); where pip has a local wheel folder (this
#                     project's CI machines) it is the CPU wheel from that folder.
#   TORCH_BUILD=cpu   the CPU-only build (~200 MB) from PyTorch's own CPU index (download.pytorch.org must be reachable)
#   TORCH_BUILD=cuda  a CUDA 12.6 build from PyTorch's cu126 index; another CUDA: TORCH_INDEX_URL=.../whl/cu128

PYTHON ?= python3
VENV ?= .venv
TORCH_BUILD ?= pypi
TORCH_REQUIREMENT ?= torch==2.13.0
TORCH_INDEX_URL ?= $(if $(filter cpu,$(TORCH_BUILD)),https://download.pytorch.org/whl/cpu,$(if $(filter cuda,$(TORCH_BUILD)),https://download.pytorch.org/whl/cu126,))
ifeq ($(filter $(TORCH_BUILD),pypi cpu cuda),)
$(error TORCH_BUILD=$(TORCH_BUILD) is unknown: use pypi (default), cpu or cuda)
endif
ARGS ?=
BENCH_ARGS ?=
PYTEST_ARGS ?=

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_INDEX := $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL),)

.DEFAULT_GOAL := help
.PHONY: help install train test test-all docs lint format data bench bench-data slurm-up slurm-down clean mutate

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "  variables: ARGS (Hydra overrides for train), PYTEST_ARGS, TORCH_BUILD (pypi|cpu|cuda), TORCH_REQUIREMENT, TORCH_INDEX_URL, VENV"

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(TORCH_INDEX) "$(TORCH_REQUIREMENT)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev,docs]"
	touch $(STAMP)

install: $(STAMP) ## create or refresh the virtual environment (.venv)

train: $(STAMP) ## train one fold: make train ARGS="model=alsnet trainer.max_epochs=5"
	$(BIN)/emg-train $(ARGS)

# pytest exits 5 when it collects nothing: a suite that tests nothing must not pass
PYTEST = rc=0; $(BIN)/python -m pytest $(1) $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests"; exit 1; fi; exit $$rc

test: $(STAMP) ## the fast tests: tests/unit and tests/integration without the slow ones (~3 min)
	@$(call PYTEST,tests/unit tests/integration tests/docs -m "not slow")

test-all: $(STAMP) ## every test: unit, integration, end-to-end (CLI, SLURM, DDP, signals), docs (CI runs it)
	@$(call PYTEST,tests)

docs: $(STAMP) ## build the documentation site into site/ (mkdocs build --strict); serve: .venv/bin/mkdocs serve
	$(BIN)/mkdocs build --strict

mutate: $(STAMP) ## mutation testing ([tool.mutmut] in pyproject.toml: the modules and their tests), before a release
	# one thread: the tests run in processes forked after torch started its thread pool, which would deadlock
	rm -rf mutants && OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/mutmut run; .venv/bin/python scripts/mutation_report.py --out docs/mutation-report.md

lint: $(STAMP) ## ruff: lint and check formatting of the whole tree (CI runs it)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## ruff: fix what can be fixed and format the whole tree
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

data: $(STAMP) ## summarise a data source: make data ARGS="data=emglab data.root=/path/to/emglab-n2001-bb"
	$(BIN)/emg-data $(ARGS)

bench: $(STAMP) ## framework vs plain PyTorch, loader, latency, memory (~4 min): writes experiments/benchmarks.json
	$(BIN)/emg-bench --json experiments/benchmarks.json $(BENCH_ARGS)

slurm-up: ## start a single-node SLURM cluster on this machine (root; installs slurm + munge from Debian)
	scripts/local_slurm.sh up

slurm-down: ## stop it
	scripts/local_slurm.sh down

bench-data: $(STAMP) ## data-path benchmark: make bench-data BENCH_ARGS="--emglab /path/to/emglab-n2001-bb"
	$(BIN)/python -m emg_lightning.cli.bench_data $(BENCH_ARGS)

clean: ## remove the virtual environment, logs and caches (not the data cache in ~/.cache)
	rm -rf $(VENV) logs .pytest_cache
