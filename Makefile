# The two commands README.md gives: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench dist fuzz docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n auto

demo: $(STAMP)
	$(BIN)/python -m sim.demo

docs: $(STAMP)
	$(BIN)/metadata states --format markdown > docs/states.md

lint: $(STAMP)
	$(BIN)/ruff check .

# dist/metadata: the agent and its pure-Python dependencies in one executable zipapp
# (#!/usr/bin/python3), installed on an image as /usr/lib/metadata. See tools/build_dist.py.
dist: $(STAMP)
	$(BIN)/python tools/build_dist.py --output dist/metadata

# Time the agent on the simulated guest and rewrite docs/performance.md (a few minutes).
# BENCH_NOTE="..." adds a sentence to the document's header (e.g. the machine was busy);
# sim.bench reads it from the environment, so the shell never interprets it.
bench: $(STAMP)
	$(BIN)/python -m sim.bench --output docs/performance.md

fuzz: $(STAMP)
	bash fuzz/run.sh

clean:
	rm -rf $(VENV) dist build *.egg-info
