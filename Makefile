# Two set-up commands: `make install` then `make test`. See README.md.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU wheel on this machine's disk; on a GPU machine pip takes the CUDA build of the same release.
TORCH_SPEC ?= torch==2.13.*

.PHONY: install test test-all lint format train sweep report bench bench-smoke wheel clean

install:
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/python -c "import torch, lightning, hydra, optuna; print('torch', torch.__version__, '| cuda', torch.cuda.is_available(), '| lightning', lightning.__version__, '| hydra', hydra.__version__, '| optuna', optuna.__version__)"

test:
	$(BIN)/python -m pytest -q

test-all:
	$(BIN)/python -m pytest -q -m "slow or not slow"

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

train:
	$(BIN)/python -m patchtst_hpo.train

sweep:
	$(BIN)/python -m patchtst_hpo.train -m budget=2M,20M

report:
	$(BIN)/python -m patchtst_hpo.report

bench:
	$(BIN)/python -m patchtst_hpo.bench

bench-smoke:
	$(BIN)/python -m patchtst_hpo.bench bench=smoke

# The installable package (conf/ and the sample inside); tests/test_package.py installs it into a fresh venv.
wheel:
	$(BIN)/pip wheel . --no-deps -w dist

clean:
	rm -rf outputs multirun .pytest_cache .ruff_cache data/processed build dist
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
