# aqua-metrics: one entry point for humans and CI.
#   make demo   run the whole stack here, without Docker (proxy + Prometheus; Grafana when present)
#   make test   install everything this machine needs, then lint and run the whole test suite
#   make lock   re-resolve requirements.lock (the image's pinned, hashed runtime dependencies)
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
PROMETHEUS_DIR := $(CURDIR)/.cache/prometheus/root/usr/bin
ALERTMANAGER_DIR := $(CURDIR)/.cache/alertmanager/root/usr/bin
STACK_PATH := $(PROMETHEUS_DIR):$(ALERTMANAGER_DIR)
DEMO_DATA_DIR ?= $(CURDIR)/.demo-data

.PHONY: deps python-deps prometheus alertmanager victoria-metrics image-tools lint test demo bench image image-test lock clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

python-deps: $(VENV)/.installed

prometheus:
	@scripts/install-prometheus.sh >/dev/null

# Debian bookworm's Alertmanager 0.25 and amtool into .cache/alertmanager/ (plus its templates
# into /usr/share/prometheus/alertmanager when missing: Debian's build reads them from there).
alertmanager:
	@scripts/install-alertmanager.sh >/dev/null

# A real remote-write receiver for tests/stack/test_remote_write.py (Debian's own package).
victoria-metrics:
	@scripts/install-victoria-metrics.sh >/dev/null

# buildah + debootstrap: tests/image builds the real Dockerfile against local stand-ins and runs it.
# Installs them from Debian when missing (needs root then); does nothing when they are present.
image-tools:
	@image/install-tools.sh

deps: python-deps prometheus alertmanager victoria-metrics

lint: python-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Everything the suite needs, the image tests' build tools included, so `make test` alone works on a
# fresh Debian machine (as root). pytest exits 5 when no test ran; make fails on it like any error.
test: deps image-tools lint
	PATH="$(STACK_PATH):$$PATH" $(VENV)/bin/pytest

demo: deps
	PATH="$(STACK_PATH):$$PATH" DATA_DIR="$${DATA_DIR:-$(DEMO_DATA_DIR)}" $(VENV)/bin/aqua-metrics start

# Benchmarks (docs/performance.md): `make bench`, or `make bench BENCH_ARGS=--quick` (~2 min).
bench: deps
	PATH="$(STACK_PATH):$$PATH" $(VENV)/bin/python bench/run.py $(BENCH_ARGS)

# The real Dockerfile, built with buildah against local stand-ins (no Docker engine; needs root).
image:
	image/build.sh

image-test: deps image-tools
	PATH="$(STACK_PATH):$$PATH" $(VENV)/bin/pytest tests/image

# The image installs exactly these versions and files (pip --require-hashes). Resolved for CPython
# 3.11 on every platform; tests/test_dockerfile.py fails when it no longer satisfies pyproject.toml.
# --native-tls: trust the system's CA store, as pip does (e.g. behind a TLS-inspecting proxy).
lock: python-deps
	$(VENV)/bin/uv pip compile --native-tls pyproject.toml --universal --python-version 3.11 --generate-hashes \
	  --custom-compile-command 'make lock' --output-file requirements.lock

clean:
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache $(DEMO_DATA_DIR)
