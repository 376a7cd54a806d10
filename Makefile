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
	$(BIN)/lint-imports

test: setup lint
	$(BIN)/pytest

bench: setup
	$(BIN)/python bench/model_throughput.py
	$(BIN)/python bench/eval_speed.py
	$(BIN)/python bench/index_search.py --quick
	$(BIN)/python bench/service_load.py
	$(BIN)/python bench/milvus_vs_faiss.py

serve: setup
	$(BIN)/reid-admin demo && $(BIN)/reid-serve

clean:
	rm -rf $(VENV) build *.egg-info
