# recctl: `make demo` and `make test` work on a fresh clone with only python3 (>= 3.11) and pip's registry.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DEMO_STORE ?= recctl-data
RECCTL := $(BIN)/recctl
DEMO_WINDOW := --since 2025-09-01 --until 2025-11-01

.PHONY: install demo test lint bench clean

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("recctl needs Python >= 3.11, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(INSTALLED)

demo: install
	@echo "== ingest the committed sample data into ./$(DEMO_STORE) (a second run stores nothing: duplicates and unchanged rows) =="
	$(RECCTL) --store $(DEMO_STORE) ingest assessments sample_data/assessments.ndjson
	$(RECCTL) --store $(DEMO_STORE) ingest recommendations sample_data/recommendations.ndjson
	$(RECCTL) --store $(DEMO_STORE) ingest interactions sample_data/interactions.ndjson
	@echo "== export the training set (the sample data has fixed dates, so the window is explicit) =="
	$(RECCTL) --store $(DEMO_STORE) export $(DEMO_WINDOW) --out demo-output/training-set
	@echo "== train LambdaRank (newest 20% of assessments validate) and evaluate it =="
	$(RECCTL) --store $(DEMO_STORE) train $(DEMO_WINDOW) --model demo-output/models/recommendation_ranker.txt
	$(RECCTL) --store $(DEMO_STORE) evaluate --since 2025-10-15 --until 2025-11-01 --model demo-output/models/recommendation_ranker.txt
	@echo "== engagement: top recommendations by implementation rate (min 3 views), and one user's history =="
	$(RECCTL) --store $(DEMO_STORE) stats --sort implementation_rate --min-views 3 --limit 10
	$(RECCTL) --store $(DEMO_STORE) history user-0139 --limit 5
	@echo "== rank one batch (sample_data/rank_batch.json) with the model and MMR diversity =="
	$(RECCTL) rank sample_data/rank_batch.json --model demo-output/models/recommendation_ranker.txt | $(BIN)/python -m recctl.cli.show

test: install
	$(BIN)/python -m pytest -q

# The performance figures of issue 7 against their baselines; not part of `make test` (~10 min).
bench: install
	$(BIN)/python -m bench

lint: install
	$(BIN)/ruff check recctl tests
	$(BIN)/ruff format --check recctl tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache $(DEMO_STORE) recctl-rejects recctl-sample demo-output bench-data bench-results.json
