# kgrec — the two commands of the README, and their parts.
#   make demo   set everything up and run the main job on the local Neo4j
#   make test   set everything up and run the tests (unit + integration against a real Neo4j)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kgrec-installed
export HF_HUB_OFFLINE ?= 1

.PHONY: help install launcher env demo test unit neo4j-start neo4j-stop clean

help:
	@echo "make demo    set up (.venv, Neo4j launcher, .env) and run the pipeline demo on the local Neo4j"
	@echo "make test    set up and run all tests (starts and stops its own Neo4j)"
	@echo "make unit    only the tests that need no database"
	@echo "make install | launcher | env | neo4j-start | neo4j-stop | clean"

# The virtualenv, with kgrec installed in editable mode. PyTorch from PyPI is large: it is installed
# once here and reused; pip skips what is already satisfied.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[dev]'
	@touch $@

# PyG's neighbour sampling (kgrec train --num-neighbors) needs torch-sparse (and its torch-scatter); PyPI
# has their sources only, built here against the installed torch without build isolation. Several minutes
# the first time; pip caches the wheels it built.
SAMPLING := $(VENV)/.kgrec-sampling
$(SAMPLING): $(STAMP)
	@$(BIN)/python -c 'import torch_sparse' 2>/dev/null || { \
	  echo "building torch-scatter and torch-sparse from source (a few minutes the first time) ..."; \
	  $(BIN)/python -m pip install --disable-pip-version-check -q 'setuptools>=70.1' && \
	  MAX_JOBS=$$(nproc) $(BIN)/python -m pip install --disable-pip-version-check -q --no-build-isolation \
	    'torch-scatter==2.1.2' && \
	  MAX_JOBS=$$(nproc) $(BIN)/python -m pip install --disable-pip-version-check -q --no-build-isolation \
	    'torch-sparse==0.6.18'; }
	@touch $@

install: $(STAMP) $(SAMPLING)

# The Java launcher of the local Neo4j (Maven downloads Neo4j's jars the first time).
launcher: install
	$(BIN)/kgrec neo4j build

# A .env with fresh random secrets, written once and never overwritten.
.env:
	@umask 077 && { \
	  echo "# Written by 'make env'. The local Neo4j keeps the password it was first started with."; \
	  echo "NEO4J_PASSWORD=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(18))')"; \
	  echo "KGREC_API_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(24))')"; \
	} > .env
	@echo "wrote .env with new random NEO4J_PASSWORD and KGREC_API_KEY"

env: .env

neo4j-start: launcher .env
	$(BIN)/kgrec neo4j start

neo4j-stop: install
	$(BIN)/kgrec neo4j stop

# DATASET=hetrec-lastfm|kgcn-lastfm|movielens|recbole loads a real dataset instead of the synthetic one:
# from DATA=folder (offline), or downloaded first when DATA is not given (needs internet), e.g.
#   make demo DATASET=hetrec-lastfm DATA=../shared/data/hetrec-lastfm-2k
#   make demo DATASET=movielens
DATASET ?=
DATA ?=
EPOCHS ?= 60
PORT ?= 8000

demo: neo4j-start
	$(BIN)/kgrec schema apply
ifneq ($(strip $(DATA)),)
	$(BIN)/kgrec load $(DATASET) $(DATA)
else ifneq ($(strip $(DATASET)),)
	$(BIN)/kgrec load $(DATASET) "$$($(BIN)/kgrec download $(DATASET) --print-path)"
else
	$(BIN)/kgrec synth --out data/synthetic --load
endif
	$(BIN)/kgrec run --epochs $(EPOCHS)
	$(BIN)/kgrec recommend --k 10
	$(BIN)/kgrec serve --port $(PORT)

test: launcher
	$(BIN)/pytest

unit: install
	$(BIN)/pytest tests/unit

clean:
	rm -rf launcher/target .pytest_cache
