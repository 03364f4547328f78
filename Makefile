# AI Admin — the two commands: `make run` (embedded default) and `make test` (whole suite).
# Both set themselves up on a fresh machine: system packages, a virtualenv, local services.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint typecheck pytest setup system-deps services bench cluster clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup-venv.sh
	@bash scripts/setup-venv.sh "$(VENV)"
	@touch $(STAMP)

system-deps:
	@bash scripts/ensure-system-deps.sh

services:
	@bash scripts/ensure-services.sh

run: system-deps setup
	@$(VENV)/bin/aiadmin serve --demo

# N server processes behind nginx on PostgreSQL + Redis (README, "Production"); Ctrl-C stops all.
N ?= 3
cluster: system-deps setup services
	@$(PY) scripts/cluster.py run --processes $(N)

lint: setup
	$(VENV)/bin/ruff check config metrics runtime actors storage web tests bench
	$(VENV)/bin/ruff format --check config metrics runtime actors storage web tests bench

typecheck: setup
	$(VENV)/bin/mypy

pytest: setup
	$(VENV)/bin/pytest -q -n 2 --dist loadfile

test: system-deps setup services
	@bash scripts/ensure-system-deps.sh --browser
	$(VENV)/bin/ruff check config metrics runtime actors storage web tests bench
	$(VENV)/bin/ruff format --check config metrics runtime actors storage web tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -q -n 2 --dist loadfile

bench: system-deps setup services
	$(PY) bench/runtime.py
	$(PY) bench/storage.py
	$(PY) bench/actors.py
	$(PY) bench/http.py
	$(PY) bench/assistant.py
	$(PY) bench/reminders.py
	$(PY) bench/startup.py
	$(PY) bench/load.py
	$(PY) bench/soak.py --quick  # the full soak (1,000,000 requests) takes hours: BENCHMARKS.md
	$(PY) bench/cluster.py  # 3 processes behind nginx (system-deps): 1,000 then 10,000 salons

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache test-artifacts
