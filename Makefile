# make repro  - reproduce the whole study (installs what it needs on first use)
# make test   - lint and run the test suite (what CI runs)
# make test-fast - lint and the unit tests alone, in minutes: no tiny pipeline, Ray or browser
# make check  - did this run reproduce the reference run? (same seeds: every model within the measured
#              arithmetic noise of its counterpart; other seeds: pool against pool; exit 1 if not)
# make reference - record this run as the reference of its data set (reference/<dataset>.json);
#              the report compares with the reference, so it is stale until the next make repro
# make noise  - measure the reference's arithmetic noise: the whole study trained again on another
#              arithmetic path in a scratch clone (a full study's time), compared model by model
# make push   - this clone's outputs and run cache to the DVC remote, with the outputs that the run
#              cache's entries name and git keeps, so another clone's `dvc repro --pull` restores them
# make campaign CAMPAIGN="-S 'ae.lr=3e-4,1e-3'" - a campaign of experiments on a Ray cluster (README)
# make bench  - the CPU benchmarks in benchmarks/ that need nothing else (benchmarks/README.md);
#              make bench-explorer (after make repro; Chromium), make bench-campaign (root)
# make lock   - re-pin requirements.txt from requirements.in
VENV ?= .venv
# The first of python3.11 ... python3.14 on PATH, else python3 if it is 3.11 or newer.
PYTHON ?= $(shell for p in python3.11 python3.12 python3.13 python3.14 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)
BIN := $(VENV)/bin
export DVC_NO_ANALYTICS := 1
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install python repro check reference noise push campaign test test-fast lint bench bench-explorer bench-campaign lock clean

install: $(VENV)/.installed

python:
	@test -n "$(PYTHON)" || { echo "error: no Python 3.11 or newer found: install python3.11, 3.12, 3.13 or 3.14, or set PYTHON=..." >&2; exit 2; }
	@echo $(PYTHON)

$(VENV)/.installed: requirements.txt | python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	touch $@

repro: install
	$(BIN)/dvc repro

check: install
	$(BIN)/python -m tools.check

reference: install
	$(BIN)/python -m tools.check reference

noise: install
	$(BIN)/python -m tools.check noise --train

push: install
	$(BIN)/python -m tools.push

campaign: install
	$(BIN)/python -m tools.campaign $(CAMPAIGN)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@# The explorer's JavaScript, where Node is at hand: a syntax error fails here, not in a browser.
	@if command -v node >/dev/null 2>&1; then node --check stages/lib/explorer.js; fi

test: lint
	$(BIN)/python -m pytest -q

# The markers are set in tests/conftest.py from what each test needs.
test-fast: lint
	$(BIN)/python -m pytest -q -m "not slow and not ray and not browser"

bench: install
	$(BIN)/python -m benchmarks.epoch
	$(BIN)/python -m benchmarks.step
	$(BIN)/python -m benchmarks.sweep
	$(BIN)/python -m benchmarks.robustness
	$(BIN)/python -m benchmarks.verdicts
	$(BIN)/python -m benchmarks.study

# The explorer page of the study's outputs (report/explorer.html, models/) in headless Chromium.
bench-explorer: install
	$(BIN)/python -m benchmarks.explorer

# A Ray campaign in a network namespace of its own: needs root for `unshare -n`.
bench-campaign: install
	$(BIN)/python -m benchmarks.campaign
	$(BIN)/python -m benchmarks.campaign_nice

lock: install
	$(BIN)/python -m pip install -q uv
	$(BIN)/uv pip compile --universal --python-version 3.11 requirements.in -o requirements.txt

clean:
	rm -rf $(VENV)
