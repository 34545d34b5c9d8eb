# The two commands: `make lab` and `make test` (plus `make bench` and `make soak`).
# Each creates .venv and installs what it needs, so a fresh clone is enough.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The panels' bundle: pip's build hook makes it on install; this rule remakes it when
# the front-end sources change afterwards.
BUNDLE := pluresdb_lab/static/widget.js
NODE_MODULES := extension/node_modules/.package-lock.json

.PHONY: lab test bench soak lint typecheck pytest notebooks frontend-test browser clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

$(NODE_MODULES): extension/package.json extension/package-lock.json
	cd extension && npm ci --no-audit --no-fund --loglevel=error

$(BUNDLE): $(NODE_MODULES) extension/vite.config.js $(shell find extension/src -type f)
	cd extension && npm run build --silent

lab: $(STAMP) $(BUNDLE)
	$(BIN)/jupyter lab notebooks/ $$([ "$$(id -u)" = 0 ] && echo --allow-root)

lint: $(STAMP)
	$(BIN)/ruff check pluresdb_lab tests bench
	$(BIN)/ruff format --check pluresdb_lab tests bench

typecheck: $(STAMP)
	$(BIN)/mypy pluresdb_lab

# tests/ui drive Debian's Chromium; install it when missing (sudo unless root).
browser:
	@[ -x /usr/bin/chromium ] || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

pytest: $(STAMP) $(BUNDLE) browser
	$(BIN)/python -m pytest -q tests

notebooks: $(STAMP) $(BUNDLE)
	$(BIN)/python -m pytest -q --nbval-lax -p no:cacheprovider notebooks

frontend-test: $(NODE_MODULES)
	cd extension && npx vitest run

test: lint typecheck frontend-test pytest notebooks

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e ".[bench]"
	$(BIN)/python bench/bench_engine.py
	$(BIN)/python bench/bench_search.py
	$(BIN)/python bench/bench_storage.py
	$(BIN)/python bench/bench_mesh.py
	$(BIN)/python bench/bench_server.py
	$(BIN)/python bench/bench_frontend.py

# The SIGKILL-under-mixed-load test of `make test` (30 seeds) with many more seeds;
# a failure names its seed, and PLURESDB_CRASH_SEED=<seed> runs that one alone.
SOAK_TRIALS ?= 2000
soak: $(STAMP)
	PLURESDB_SOAK_TRIALS=$(SOAK_TRIALS) $(BIN)/python -m pytest -q tests/engine/test_crash_mixed.py

clean:
	rm -rf $(VENV) build dist *.egg-info extension/node_modules pluresdb_lab/static
