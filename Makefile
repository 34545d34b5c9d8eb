# The two commands: `make lab` and `make test` (plus `make bench`).
# Each creates .venv and installs what it needs, so a fresh clone is enough.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: lab test bench lint typecheck pytest notebooks clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/ $$([ "$$(id -u)" = 0 ] && echo --allow-root)

lint: $(STAMP)
	$(BIN)/ruff check pluresdb_lab tests bench
	$(BIN)/ruff format --check pluresdb_lab tests bench

typecheck: $(STAMP)
	$(BIN)/mypy pluresdb_lab

pytest: $(STAMP)
	$(BIN)/python -m pytest -q tests

notebooks: $(STAMP)
	$(BIN)/python -m pytest -q --nbval-lax -p no:cacheprovider notebooks

test: lint typecheck pytest notebooks

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e ".[bench]"
	$(BIN)/python bench/bench_engine.py
	$(BIN)/python bench/bench_search.py
	$(BIN)/python bench/bench_storage.py
	$(BIN)/python bench/bench_mesh.py
	$(BIN)/python bench/bench_server.py

clean:
	rm -rf $(VENV) build dist *.egg-info
