# Two commands do all the set-up: `make sweep` and `make test`. `make help` lists the rest.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION ?= false

.PHONY: help setup python-venv system-deps sweep test test-all lint bench clean

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo "Test tiers (pytest markers; run one with .venv/bin/python -m pytest -m TIER):"
	@echo "  not slow     the fast tier: units, in-process Ray and MLflow (make test)"
	@echo "  slow         end-to-end sweeps through the CLI, real Ray and MLflow (make test-all runs every tier)"
	@echo "  cluster      the docker-compose topology for real: PostgreSQL, S3, auth MLflow, multi-node Ray"
	@echo "  browser      the MLflow UI and optuna-dashboard in headless Chromium"
	@echo "  bench        the benchmarks' smoke runs at their smallest sizes"

setup: $(VENV)/.installed ## create .venv (if missing) and install scenesweep with its test and lint tools

# Reinstalls only when the project's dependencies change.
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -c "import ensurepip, venv" 2>/dev/null || $(MAKE) --no-print-directory python-venv
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,lint]"
	touch $@

sweep: setup ## a demo sweep: built-in offline data, embedded Ray, local MLflow store (./mlruns.db)
	$(PY) orchestrator.py sweep --space tinynet --data demo --samples 8 --epochs 6 --fix input_size=32

test: setup ## the fast tier (no end-to-end sweeps; a few minutes): for day-to-day work
	$(PY) -m pytest -m "not slow"

test-all: setup system-deps ## the whole suite, end-to-end sweeps and cluster tests included (what CI runs)
	$(PY) -m pytest

lint: setup ## ruff (lint + format check) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Debian and Ubuntu ship `python3 -m venv` apart, as python3.X-venv: installed with apt as root, else say how.
python-venv:
	@pkg="python$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv"; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing $$pkg (python3 -m venv needs it)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkg >/dev/null; \
	else echo "error: $(PYTHON) -m venv is not available; install it: sudo apt-get install $$pkg (or python3-venv)"; exit 1; fi

# What the cluster and browser tests need from the OS: PostgreSQL's server (the MLflow backend store),
# Debian's docker-compose (validates docker-compose.yml) and Chromium (tests/test_browser.py renders the
# MLflow UI and optuna-dashboard headless). Installed with apt when missing and run as root (CI);
# otherwise the tests that need them skip and say why (under CI=true they fail).
system-deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v docker-compose >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	command -v git >/dev/null 2>&1 || missing="$$missing git"; \
	command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing"; apt-get update -qq; \
	    case "$$missing" in *chromium*) apt-cache show chromium >/dev/null 2>&1 \
	      || missing=$$(echo "$$missing" | sed 's/chromium/chromium-browser/');; esac; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || { \
	      echo "warning: could not install$$missing; the tests that need it will skip (fail under CI=true)"; \
	      case "$$CI" in 1|true|yes) exit 1;; esac; }; \
	  else echo "note:$$missing not installed (needs root and apt-get); the tests that need it will skip"; \
	    case "$$CI" in 1|true|yes) exit 1;; esac; fi; \
	fi

# The benchmark suite (README "Performance"): tables on stdout, JSON in benchmarks/results/.
# BENCH_LOCK=FILE runs each benchmark under `flock FILE` so shared machines time one thing at a time.
BENCH_DATA ?= ../shared/data/mit_split_64
# Wall-clock budget per arm of benchmarks/search_quality.py (four arms: an hour at 15m).
SEARCH_BUDGET ?= 15m
LOCK := $(if $(BENCH_LOCK),flock $(BENCH_LOCK))
bench: setup ## the benchmark suite (README, Performance); BENCH_DATA=path/to/MIT_split
	$(LOCK) $(PY) -m benchmarks.plain_loop --data $(BENCH_DATA) --seeds 0,1,2 --epochs 30
	$(LOCK) $(PY) -m benchmarks.throughput --data $(BENCH_DATA) --compile
	$(LOCK) $(PY) -m benchmarks.overhead --data $(BENCH_DATA)
	$(LOCK) $(PY) -m benchmarks.time_to_accuracy --data $(BENCH_DATA)
	$(LOCK) $(PY) -m benchmarks.packing --data $(BENCH_DATA)
	$(LOCK) $(PY) benchmarks/bovw_cache.py --data $(BENCH_DATA)
	$(LOCK) $(PY) -m benchmarks.search_quality --data $(BENCH_DATA) --budget $(SEARCH_BUDGET)
	$(LOCK) $(PY) -m benchmarks.search_ablation --data $(BENCH_DATA) --budget 3m --seeds 0,1,2 --fix input_size=32

clean: ## remove the local sweep state and tracking store
	rm -rf sweeps mlruns.db mlartifacts
