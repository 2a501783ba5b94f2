# Two commands do all the set-up: `make sweep` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
export RAY_AUTH_MODE ?= disabled
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION ?= false

.PHONY: setup system-deps sweep test bench clean

setup: $(VENV)/.installed

# Reinstalls only when the project's dependencies change.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

sweep: setup
	$(PY) orchestrator.py sweep --space tinynet --data demo --samples 8 --epochs 6 --fix input_size=32

test: setup system-deps
	$(PY) -m pytest

# What the cluster tests need from the OS: PostgreSQL's server (the MLflow backend store) and
# Debian's docker-compose (validates docker-compose.yml). Installed with apt when missing and run as
# root (CI); otherwise the tests that need them skip and say why.
system-deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v docker-compose >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	      || echo "warning: could not install$$missing; the tests that need it will skip"; \
	  else echo "note:$$missing not installed (needs root and apt-get); the tests that need it will skip"; fi; \
	fi

# The benchmark suite (README "Performance"): tables on stdout, JSON in benchmarks/results/.
# BENCH_LOCK=FILE runs each benchmark under `flock FILE` so shared machines time one thing at a time.
BENCH_DATA ?= ../shared/data/mit_split_64
LOCK := $(if $(BENCH_LOCK),flock $(BENCH_LOCK))
bench: setup
	$(LOCK) $(PY) -m benchmarks.throughput --data $(BENCH_DATA) --compile
	$(LOCK) $(PY) -m benchmarks.overhead --data $(BENCH_DATA)
	$(LOCK) $(PY) -m benchmarks.time_to_accuracy --data $(BENCH_DATA)
	$(LOCK) $(PY) -m benchmarks.packing --data $(BENCH_DATA)
	$(LOCK) $(PY) benchmarks/bovw_cache.py --data $(BENCH_DATA)

clean:
	rm -rf sweeps mlruns.db mlartifacts
