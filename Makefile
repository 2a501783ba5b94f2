# Two commands do all the set-up: `make sweep` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
export RAY_AUTH_MODE ?= disabled
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION ?= false

.PHONY: setup sweep test bench clean

setup: $(VENV)/.installed

# Reinstalls only when the project's dependencies change.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

sweep: setup
	$(PY) orchestrator.py sweep --space tinynet --data demo --samples 8 --epochs 6 --fix input_size=32

test: setup
	$(PY) -m pytest

clean:
	rm -rf sweeps mlruns.db mlartifacts
