# aqua-metrics: one image with the signing proxy, Prometheus, Alertmanager and Grafana under
# supervisord.
#
#   docker build -t aqua-metrics:0.1.0 .
#   docker run -p 3000:3000 -v aqua-data:/data aqua-metrics:0.1.0     # the built-in demo fleet
#
# Every source is a build argument with the official image as its default, so a build can point them
# at a mirror or a local stand-in (e.g. --build-arg PYTHON_IMAGE=registry.example/python:3.11...).
# Nothing is fetched when the container runs: Python packages, Prometheus, Alertmanager, Grafana, the dashboards
# and the provisioning files are all in the image.

# Python base: Debian bookworm (glibc 2.36) with CPython 3.11 in /usr/local.
ARG PYTHON_IMAGE=python:3.11.17-slim-bookworm
# Prometheus 3.5 is the 3.x long-term-support line. The official image holds statically linked Go
# binaries at /bin/prometheus and /bin/promtool, so they run on any Linux base. Only prometheus is
# copied: nothing in the image runs promtool, and it would add ~100 MB.
ARG PROMETHEUS_IMAGE=prom/prometheus:v3.5.5
# Alertmanager: the official image holds statically linked /bin/alertmanager and /bin/amtool, with
# the notification templates built in. amtool is copied too: `aqua-metrics start` checks the
# Alertmanager configuration with `amtool check-config` before anything starts, and it manages
# silences from a shell in the container (`amtool silence add ...`).
ARG ALERTMANAGER_IMAGE=prom/alertmanager:v0.33.1
# Grafana 12.x. 13.x still bundles the Prometheus data source; what keeps us on 12 is that 13.x
# tries to auto-update bundled plugins when it starts (an air-gapped site cannot reach the plugin
# catalogue) and the 13.2 regressions. Grafana's home is /usr/share/grafana: bin/grafana,
# conf/defaults.ini, public/, bundled plugins. Grafana's images (Alpine and Ubuntu alike) are made
# from its `linux-x64-musl` build, which is dynamically linked against musl (loader
# /lib/ld-musl-x86_64.so.1): that is why Grafana's own Ubuntu image installs Ubuntu's `musl`, and why
# the final stage installs Debian's. (The static build is the separate linux-amd64 tarball, zig cc
# with -extldflags=-static; copying from the image is what keeps the build free of downloads.)
ARG GRAFANA_IMAGE=grafana/grafana:12.4.8-ubuntu

# ---------------------------------------------------------------------------------------------------
FROM ${PROMETHEUS_IMAGE} AS prometheus

FROM ${ALERTMANAGER_IMAGE} AS alertmanager

FROM ${GRAFANA_IMAGE} AS grafana

# ---------------------------------------------------------------------------------------------------
# The project in a virtual environment made with the base's own python3, so nothing depends on where
# the base keeps Python. Runtime dependencies only (no dev extras). The wheel carries
# supervisord.conf, prometheus.yml, rules/ and grafana/provisioning/ (hatch force-include).
#
# The environment is trimmed to what aqua-metrics loads (image/builder/slim.py, docs/image.md): the
# oci SDK's ~180 service packages, unused dependencies, test suites, debug symbols, pip. A smoke step
# then builds and uses every auth mode's signer (image/builder/smoke.py), so a module cut by mistake
# stops the build here.
FROM ${PYTHON_IMAGE} AS builder

# strip, for the debug symbols of compiled dependencies.
ARG BINUTILS_VERSION=2.40-2

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends "binutils=${BINUTILS_VERSION}" \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Dependencies first, in a layer of their own that is reused while requirements.lock is unchanged:
# exactly the versions and files pinned there (`make lock` regenerates it from pyproject.toml), so
# two builds install the same bytes. --no-compile: bytecode is made later, only for what is kept.
COPY requirements.lock ./
COPY image/builder/slim.py ./image/builder/
RUN python3 -m venv /opt/aqua-metrics \
    && /opt/aqua-metrics/bin/pip install --no-cache-dir --no-compile --require-hashes \
       -r requirements.lock \
    && /opt/aqua-metrics/bin/python image/builder/slim.py deps /opt/aqua-metrics

# The project itself, without dependencies: the lock already installed them.
COPY pyproject.toml README.md supervisord.conf prometheus.yml ./
COPY app/ ./app/
COPY rules/ ./rules/
COPY grafana/provisioning/ ./grafana/provisioning/
COPY image/builder/smoke.py ./image/builder/
RUN /opt/aqua-metrics/bin/pip install --no-cache-dir --no-compile --no-deps . \
    && /opt/aqua-metrics/bin/python image/builder/slim.py final /opt/aqua-metrics \
    && /opt/aqua-metrics/bin/aqua-metrics --version \
    && /opt/aqua-metrics/bin/python image/builder/smoke.py

# ---------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

ARG PYTHON_IMAGE
ARG AQUA_METRICS_VERSION=0.1.0
# Debian bookworm package versions (amd64 and arm64 share them unless Debian says otherwise).
ARG TINI_VERSION=0.19.0-1+b3
ARG MUSL_VERSION=1.2.3-1
ARG AQUA_UID=10001

LABEL org.opencontainers.image.title="aqua-metrics" \
      org.opencontainers.image.description="Monitors vLLM model deployments on OCI Data Science AI Quick Actions: OCI signing proxy, Prometheus and Grafana in one container." \
      org.opencontainers.image.version="${AQUA_METRICS_VERSION}" \
      org.opencontainers.image.licenses="UPL-1.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

# tini: PID 1 that forwards signals and reaps zombies, so `docker stop` ends the stack cleanly and
# the exit code of `aqua-metrics start` becomes the container's. musl: the loader of Grafana's
# musl-linked binary (see GRAFANA_IMAGE above).
RUN apt-get update \
    && apt-get install -y --no-install-recommends "tini=${TINI_VERSION}" "musl=${MUSL_VERSION}" \
    && rm -rf /var/lib/apt/lists/*

COPY --from=prometheus --chown=0:0 /bin/prometheus /usr/local/bin/prometheus
COPY --from=alertmanager --chown=0:0 /bin/alertmanager /bin/amtool /usr/local/bin/
# The notification templates, where a distribution's build of Alertmanager reads them (Debian's,
# which CI's stand-in image uses, or one a user gives as ALERTMANAGER_IMAGE). The official binary
# embeds the same files and never opens these. Copied from Debian sid's prometheus-alertmanager
# 0.33.1 (upstream's template/default.tmpl and template/email.tmpl, Apache-2.0).
COPY --chown=0:0 image/alertmanager-templates/ /usr/share/prometheus/alertmanager/
COPY --from=grafana --chown=0:0 /usr/share/grafana /usr/share/grafana
COPY --from=builder --chown=0:0 /opt/aqua-metrics /opt/aqua-metrics

# Non-root user in group 0: an orchestrator that picks an arbitrary uid (OpenShift style) keeps
# group 0, so the group-writable /data and home still work. Everything else stays root-owned.
RUN useradd --no-log-init --uid "${AQUA_UID}" --gid 0 --home-dir /home/aqua --shell /usr/sbin/nologin aqua \
    && install -d -o "${AQUA_UID}" -g 0 -m 0775 /home/aqua \
    && install -d -o "${AQUA_UID}" -g 0 -m 0770 /data \
    && prometheus --version \
    && alertmanager --version \
    && amtool --version \
    && /usr/share/grafana/bin/grafana --version

ENV AQUA_METRICS_IN_IMAGE=1 \
    DATA_DIR=/data \
    HOME=/home/aqua \
    PATH=/opt/aqua-metrics/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PROXY_HOST=127.0.0.1
# Grafana's air-gapped settings (no analytics, update checks, news, gravatar or plugin installs)
# are set by `aqua-metrics run grafana` (app/stack/components.py) every time it starts Grafana.

USER ${AQUA_UID}:0
WORKDIR /home/aqua
VOLUME /data
# Only Grafana faces the network; the proxy and Prometheus listen on loopback
# (PROMETHEUS_EXPOSE=true opens Prometheus on 9090 with basic auth).
EXPOSE 3000

HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["aqua-metrics", "health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["aqua-metrics", "start"]
