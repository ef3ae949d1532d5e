# meshgate: every set-up step a fresh machine needs lives here.
# `make demo` and `make test` are the two front-door commands (see README.md).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NODE_STAMP := contracts/node_modules/.installed
PROTOS := proto/cloudevents.proto proto/gateway.proto proto/federation.proto proto/region.proto
PYTEST_ARGS ?=

.PHONY: setup test lint fmt proto contracts bench demo clean chaos fuzz

setup: $(STAMP) $(NODE_STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $@

# Ganache (the local chain) and solc (the contract compiler), pinned by contracts/package-lock.json.
$(NODE_STAMP): contracts/package.json contracts/package-lock.json
	cd contracts && npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: setup lint
	$(VENV)/bin/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -I . --python_out=. --grpc_python_out=. \
		--plugin=protoc-gen-mypy=$(VENV)/bin/protoc-gen-mypy --mypy_out=. \
		--plugin=protoc-gen-mypy_grpc=$(VENV)/bin/protoc-gen-mypy_grpc --mypy_grpc_out=. $(PROTOS)

contracts: $(NODE_STAMP)
	cd contracts && node compile.js

bench: setup
	$(PY) -m bench.run

demo: setup
	$(PY) -m meshgate.demo

# Fault scenarios against real processes; writes bench/CHAOS.md (CHAOS_ARGS="--runs 3 --only kill-origin").
CHAOS_ARGS ?=
chaos: setup
	$(PY) -m bench.chaos $(CHAOS_ARGS)

# Hypothesis fuzzing of every decoder at the edges, 100000 inputs per target by default
# (MESHGATE_FUZZ_EXAMPLES=N to change; `make test` runs the same targets with 200).
fuzz: setup
	MESHGATE_FUZZ_EXAMPLES=$${MESHGATE_FUZZ_EXAMPLES:-100000} $(VENV)/bin/pytest -n 2 -q \
		-o timeout=0 --durations=0 --hypothesis-show-statistics tests/fuzz

clean:
	rm -rf $(VENV) contracts/node_modules .pytest_cache .mypy_cache .ruff_cache
