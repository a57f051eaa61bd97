# hilbert_pipeline — the two Quickstart commands (`make demo`, `make test`) set themselves up.
SHELL := /bin/bash
# python3.11 when present (the tested version), else python3 (pyproject allows 3.11-3.12)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MPLBACKEND := Agg

.PHONY: help setup system-deps-demo system-deps-test demo test bench viz lint

help:
	@echo "make demo   - set up, build the State-of-the-Union demo corpus, run the default pipeline"
	@echo "make test   - set up and run the test suite"
	@echo "make bench  - run the benchmarks in benchmarks/"
	@echo "make viz    - build the static Kedro-Viz site into build/"

# (Re)install the package when pyproject.toml is newer than the last install.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade -q "pip>=24"
	$(BIN)/python -m pip install -e ".[dev]"
	$(BIN)/python -m pip check
	@touch $(STAMP)

setup: $(STAMP)

# System packages, installed only when missing (as root via apt-get, else the exact command):
# espeak-ng synthesises the demo speech (demo and tests); the PostgreSQL server runs the
# multi-worker tuning test (tests only).
define ensure_apt
	@missing=""; \
	for pkg in $(1); do \
	  case $$pkg in \
	    espeak-ng) command -v espeak-ng >/dev/null 2>&1 || missing="$$missing espeak-ng";; \
	    postgresql) { command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || missing="$$missing postgresql";; \
	  esac; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing system packages:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	  else \
	    echo "missing system packages:$$missing"; \
	    echo "install them with: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi
endef

system-deps-demo:
	$(call ensure_apt,espeak-ng)

system-deps-test:
	$(call ensure_apt,espeak-ng postgresql)

demo: setup system-deps-demo
	$(BIN)/kedro run --pipelines demo_data
	$(BIN)/kedro run --env demo
	$(BIN)/kedro run --env demo --pipelines inference
	@echo; cat data/08_reporting/comparison.md; echo
	@echo "Reports: data/08_reporting/ (metrics.json, comparison.md, fold_metrics.csv,"
	@echo "  per_class_metrics.csv, confusion_*.png, training_curves.png); model: data/06_models/"
	@echo "Predictions and explanations (here on the training corpus itself, not held-out):"
	@echo "  data/07_model_output/ (predictions.csv, explanations.csv, inference_report.html)"

test: setup system-deps-test
	$(BIN)/python -m pytest

bench: setup
	@for b in benchmarks/bench_*.py; do \
		case $$b in *learning_curve*|*member_rules*) echo "== $$b skipped (20 minutes or more; run it by name)"; continue;; esac; \
		echo "== $$b"; $(BIN)/python $$b || exit 1; done

viz: setup
	$(BIN)/kedro viz build

lint: setup
	$(BIN)/ruff check src tests benchmarks
