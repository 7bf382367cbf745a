# Two entry points on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= out
# Test processes: one per core of the 2-core CI machine; a module's tests stay in one process (its fixtures)
TEST_WORKERS ?= 2

.PHONY: run test install clean preview bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,tf,dask,export]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/synthtext-industrial generate recipes/default.yaml -n 64 --shard-size 32 -o $(OUT)/default --seed 0
	$(BIN)/synthtext-industrial verify $(OUT)/default
	$(BIN)/synthtext-industrial preview recipes/default.yaml -n 16 -o $(OUT)/default-preview.png --seed 0
	@echo "Dataset: $(OUT)/default (LMDB pages in lmdb/, line crops in crops/, manifest.json);" \
	      "contact sheet: $(OUT)/default-preview.png"

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

bench: $(STAMP)
	taskset -c 0 $(BIN)/python benchmarks/bench_render.py

clean:
	rm -rf $(VENV) $(OUT)
