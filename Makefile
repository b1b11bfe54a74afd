# make repro  - reproduce the whole study (installs what it needs on first use)
# make test   - lint and run the test suite (what CI runs)
# make bench  - the benchmarks in benchmarks/
VENV ?= .venv
PYTHON ?= python3.11
BIN := $(VENV)/bin
export DVC_NO_ANALYTICS := 1
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install repro test lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	touch $@

repro: install
	$(BIN)/dvc repro

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python -m benchmarks.epoch
	$(BIN)/python -m benchmarks.step
	$(BIN)/python -m benchmarks.sweep
	$(BIN)/python -m benchmarks.study

clean:
	rm -rf $(VENV)
