# recctl: `make demo` and `make test` work on a fresh clone with only python3 (>= 3.11) and pip's registry.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DEMO_STORE ?= recctl-data
RECCTL := $(BIN)/recctl

.PHONY: install demo test lint clean

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("recctl needs Python >= 3.11, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(INSTALLED)

demo: install
	@echo "== ingest the committed sample data into ./$(DEMO_STORE) (a second run finds only duplicates) =="
	$(RECCTL) --store $(DEMO_STORE) ingest assessments sample_data/assessments.ndjson
	$(RECCTL) --store $(DEMO_STORE) ingest recommendations sample_data/recommendations.ndjson
	$(RECCTL) --store $(DEMO_STORE) ingest interactions sample_data/interactions.ndjson

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check recctl tests
	$(BIN)/ruff format --check recctl tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache $(DEMO_STORE) recctl-rejects
