PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test lint bench serve clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: setup
	$(BIN)/ruff check .

test: setup lint
	$(BIN)/pytest

bench: setup
	$(BIN)/python bench/model_throughput.py
	$(BIN)/python bench/eval_speed.py

serve: setup
	@echo "The retail service is not built yet (issue 5); see README.md for training and export." >&2
	@exit 2

clean:
	rm -rf $(VENV) build *.egg-info
