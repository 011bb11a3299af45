# recctl: `make demo` and `make test` work on a fresh clone with only python3 (>= 3.11) and pip's registry.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DEMO_STORE ?= recctl-data
RECCTL := $(BIN)/recctl
DEMO_WINDOW := --since 2025-09-01 --until 2025-11-01

.PHONY: install demo test lint bench screenshot check-debias check-off-policy check-experiments check-mq2008 clean

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
	$(RECCTL) --store $(DEMO_STORE) ingest impressions sample_data/impressions.ndjson
	$(RECCTL) --store $(DEMO_STORE) ingest interactions sample_data/interactions.ndjson
	@echo "== export the training set (the sample data has fixed dates, so the window is explicit) =="
	$(RECCTL) --store $(DEMO_STORE) export $(DEMO_WINDOW) --out demo-output/training-set
	@echo "== position bias: how much less users look at each slot, from the randomised served lists =="
	$(RECCTL) --store $(DEMO_STORE) bias $(DEMO_WINDOW) --out demo-output/bias.json
	@echo "== train LambdaRank on September into models/ (where rank looks by default), position-debiased =="
	$(RECCTL) --store $(DEMO_STORE) train --since 2025-09-01 --until 2025-10-01
	@echo "== the same, naively (clicks taken as relevance), for comparison =="
	$(RECCTL) --store $(DEMO_STORE) --quiet train --since 2025-09-01 --until 2025-10-01 --debias none --model demo-output/naive.txt
	@echo "== evaluate on the second half of October, on assessments it never saw: logged clicks, then the users' hidden truth =="
	$(RECCTL) --store $(DEMO_STORE) evaluate --since 2025-10-15 --until 2025-11-01 --holdout-only
	$(RECCTL) --store $(DEMO_STORE) evaluate --since 2025-10-15 --until 2025-11-01 --holdout-only --grades sample_data/truth.ndjson
	$(RECCTL) --store $(DEMO_STORE) evaluate --since 2025-10-15 --until 2025-11-01 --holdout-only --grades sample_data/truth.ndjson --model demo-output/naive.txt
	@echo "== the two models side by side on the same held-out lists, against the truth (paired bootstrap of the difference) =="
	$(RECCTL) --store $(DEMO_STORE) evaluate --since 2025-10-15 --until 2025-11-01 --holdout-only --grades sample_data/truth.ndjson --model models/recommendation_ranker.txt --model demo-output/naive.txt
	$(RECCTL) models show models/recommendation_ranker.txt
	@echo "== tune MMR's lambda: relevance against the truth vs diversity on late October's lists, the knee suggested =="
	$(RECCTL) --store $(DEMO_STORE) tune --since 2025-10-15 --until 2025-11-01 --lambda 0.3:1:0.1 --grades sample_data/truth.ndjson --plot demo-output/frontier.svg
	@echo "== one self-contained HTML report of the window and the model =="
	$(RECCTL) --store $(DEMO_STORE) report $(DEMO_WINDOW) --out demo-output/report.html
	@echo "== the whole loop, simulated: three rounds of serve -> react -> ingest -> retrain, judged by the users' hidden truth =="
	$(RECCTL) simulate --rounds 2 --assessments-per-round 300 --seed 5 --explore plackett-luce --out demo-output/simulation --force
	@echo "== off-policy: what that model would earn in clicks per list, estimated from the randomised lists of late October =="
	$(RECCTL) --store $(DEMO_STORE) evaluate --off-policy --since 2025-10-15 --until 2025-11-01
	@echo "== engagement: top recommendations by implementation rate (min 3 views), and one user's history =="
	$(RECCTL) --store $(DEMO_STORE) stats --sort implementation_rate --min-views 3 --limit 10
	$(RECCTL) --store $(DEMO_STORE) history user-0139 --limit 5
	@echo "== rank one batch (sample_data/rank_batch.json) with that model and MMR diversity, logging the served list =="
	$(RECCTL) rank sample_data/rank_batch.json --log demo-output/served.ndjson | $(RECCTL) show
	@echo "== the same batch drawn by Plackett-Luce exploration (seeded), logged with its propensities for later off-policy evaluation =="
	$(RECCTL) rank sample_data/rank_batch.json --explore plackett-luce --seed 1 --log demo-output/served.ndjson | $(RECCTL) show

# Extra pytest arguments, e.g. make test ARGS="-m 'not slow' -x" while iterating (slow tests run by default).
ARGS ?=
# On every core, at most four workers (ARGS="-n 0" runs the tests in this process, one by one).
test: install
	$(BIN)/python -m pytest -q -n auto --maxprocesses=4 $(ARGS)

# The README's picture of `recctl report`, taken by the browser test (needs chromium).
screenshot: install
	RECCTL_SCREENSHOT=$(CURDIR)/docs/images/report.png $(BIN)/python -m pytest -q -n 0 tests/test_report_browser.py

# The performance figures against their baselines; not part of `make test` (~10 min).
bench: install
	$(BIN)/python -m bench

# What debiasing buys against the simulator's truth, on two fresh simulated worlds; not part of `make test` (~5 min).
check-debias: install
	$(BIN)/python checks/debiasing.py

# Off-policy estimates against the simulator's true expected clicks, ten fresh worlds; not part of `make test` (~15 min).
check-off-policy: install
	$(BIN)/python checks/off_policy.py

# A/A calibration, A/B coverage, the sample-ratio check and interleaving against A/B, on simulated logs;
# not part of `make test` (~10 min).
check-experiments: install
	$(BIN)/python checks/experiments.py

# LightGBM parity on LETOR 4.0 MQ2008, which the repository does not ship; not part of `make test`.
# make check-mq2008 MQ2008=/path/to/MQ2008/Fold1   (a folder with train.txt, vali.txt, test.txt)
MQ2008 ?= $(RECCTL_MQ2008)
check-mq2008: install
	@if [ -z "$(MQ2008)" ]; then \
	  echo "check-mq2008: not run; point MQ2008=... (or RECCTL_MQ2008) at a folder with MQ2008's train.txt, vali.txt and test.txt"; \
	else \
	  RECCTL_MQ2008="$(MQ2008)" $(BIN)/python -m pytest checks -q; \
	fi

lint: install
	$(BIN)/ruff check recctl tests checks
	$(BIN)/ruff format --check recctl tests checks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache $(DEMO_STORE) recctl-rejects recctl-sample demo-output recctl-simulation report.html bench-data bench-results.json
	rm -f models/recommendation_ranker.txt models/recommendation_ranker.meta.json
