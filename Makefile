# emg-lightning: every target sets up its own virtual environment on first use.
#   make train            train one leave-one-subject-out fold (synthetic data unless you pass ARGS)
#   make train ARGS="model=alsnet data=emglab data.root=/path/to/emglab-n2001-bb"
#   make test             run the test suite
#   make lint             ruff lint + format check (CI runs it)
# On a CUDA machine choose the torch build first, e.g.
#   make train TORCH_REQUIREMENT="torch==2.5.1" TORCH_INDEX_URL=https://download.pytorch.org/whl/cu124

PYTHON ?= python3
VENV ?= .venv
TORCH_REQUIREMENT ?= torch==2.13.0
TORCH_INDEX_URL ?=
ARGS ?=
BENCH_ARGS ?=
PYTEST_ARGS ?=

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_INDEX := $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL),)

.DEFAULT_GOAL := help
.PHONY: help install train test lint format data bench bench-data slurm-up slurm-down clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "  variables: ARGS (Hydra overrides for train), PYTEST_ARGS, TORCH_REQUIREMENT, TORCH_INDEX_URL, VENV"

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(TORCH_INDEX) "$(TORCH_REQUIREMENT)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) ## create or refresh the virtual environment (.venv)

train: $(STAMP) ## train one fold: make train ARGS="model=alsnet trainer.max_epochs=5"
	$(BIN)/emg-train $(ARGS)

test: $(STAMP) ## run the tests (real-data tests run when EMGLAB_DIR is set)
	@# pytest exits 5 when it collects nothing: a suite that tests nothing must not pass
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests"; exit 1; fi; exit $$rc

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
