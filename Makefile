PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MILVUS_LITE := 3.2.2
FAISS_GPU := 1.15.1

.PHONY: setup test lint bench gpu-check serve clean

setup: $(STAMP)

# Milvus Lite (for the Milvus tests) goes in without its faiss-cpu dependency, which would overwrite
# faiss-gpu's files; a .venv made before that loses faiss-cpu and gets faiss-gpu's files back.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps 'milvus-lite==$(MILVUS_LITE)'
	if $(BIN)/pip show --quiet faiss-cpu 2>/dev/null; then \
	    $(BIN)/pip uninstall --quiet --yes faiss-cpu && \
	    $(BIN)/pip install --quiet --force-reinstall --no-deps 'faiss-gpu==$(FAISS_GPU)'; fi
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

gpu-check: setup
	$(BIN)/python bench/gpu_check.py

serve: setup
	$(BIN)/reid-admin demo && $(BIN)/reid-serve

clean:
	rm -rf $(VENV) build *.egg-info
