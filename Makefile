# aqua-metrics: one entry point for humans and CI.
#   make demo   run the whole stack here, without Docker (proxy + Prometheus; Grafana when present)
#   make test   install everything this machine needs, then lint and run the whole test suite
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
PROMETHEUS_DIR := $(CURDIR)/.cache/prometheus/root/usr/bin
DEMO_DATA_DIR ?= $(CURDIR)/.demo-data

.PHONY: deps python-deps prometheus lint test demo bench image image-test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

python-deps: $(VENV)/.installed

prometheus:
	@scripts/install-prometheus.sh >/dev/null

deps: python-deps prometheus

lint: python-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: deps lint
	PATH="$(PROMETHEUS_DIR):$$PATH" $(VENV)/bin/pytest

demo: deps
	PATH="$(PROMETHEUS_DIR):$$PATH" DATA_DIR="$${DATA_DIR:-$(DEMO_DATA_DIR)}" $(VENV)/bin/aqua-metrics start

# Benchmarks (docs/performance.md): `make bench`, or `make bench BENCH_ARGS=--quick` (~2 min).
bench: deps
	PATH="$(PROMETHEUS_DIR):$$PATH" $(VENV)/bin/python bench/run.py $(BENCH_ARGS)

# The real Dockerfile, built with buildah against local stand-ins (no Docker engine; needs root).
image:
	image/build.sh

image-test: python-deps prometheus
	PATH="$(PROMETHEUS_DIR):$$PATH" $(VENV)/bin/pytest tests/image

clean:
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache $(DEMO_DATA_DIR)
