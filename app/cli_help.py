"""What `aqua-metrics <command> --help` says: what each command does and the settings it uses.

Kept apart from the command bodies in `app.cli` so the words can change without touching them.
Every setting named here must be in README's settings tables (tests/test_readme.py checks).
"""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

_SEE = "Every setting is an environment variable; README.md, section Settings, lists them all."

# command -> (description, epilog). The epilog names the command's main settings.
_HELP: dict[str, tuple[str, str]] = {
    "check": (
        "Validate every setting and load the OCI credentials (instance principals excepted), "
        "without starting anything, then print what the configuration resolves to: auth mode, "
        "targets, discovery, ports, scrape interval, data folder and alert receivers. Never "
        "prints a secret. Exit 0 when valid; 2 with one line per problem.",
        "main settings:\n"
        "  TARGET, TARGETS        the deployments to scrape (none: the built-in demo fleet)\n"
        "  OCI_COMPARTMENT_ID     discover the deployments of these compartments instead\n"
        "  OCI_AUTH               auto, resource_principal, instance_principal, api_key,\n"
        "                         security_token or none\n"
        "  OCI_CONFIG_FILE, OCI_CONFIG_PROFILE   the profile for api_key and security_token\n"
        "  SCRAPE_INTERVAL, DATA_DIR\n\n" + _SEE,
    ),
    "discover": (
        "List the model deployments of OCI_COMPARTMENT_ID once, with the configured "
        "credentials, and print what would be scraped (name, state, model, container, shape, "
        "URL). Exit 0 after a listing; 1 with one line saying why the listing failed (often a "
        "missing IAM policy); 2 for a bad setting.",
        "main settings:\n"
        "  OCI_COMPARTMENT_ID     compartment (or tenancy) OCIDs, comma separated (required)\n"
        "  OCI_REGION             region of the Data Science API (default: the credentials')\n"
        "  DISCOVERY_SCOPE        aqua (AI Quick Actions deployments) or all\n"
        "  DISCOVERY_PROJECT_ID   only this Data Science project\n"
        "  OCI_AUTH, OCI_DATA_SCIENCE_ENDPOINT\n\n" + _SEE,
    ),
    "proxy": (
        "Run only the signing proxy in the foreground (what supervisord runs inside `start`): "
        "it fetches each deployment's /predict/metrics with an OCI-signed GET and serves it to "
        "Prometheus at /targets/<name>/metrics, with service discovery at /sd, its own metrics "
        "at /metrics, OCI Monitoring gauges at /oci-monitoring/metrics, and /healthz, /readyz.",
        "main settings:\n"
        "  PROXY_HOST, PROXY_PORT                  where it listens (127.0.0.1:8080)\n"
        "  TARGET, TARGETS, OCI_COMPARTMENT_ID     what it serves\n"
        "  OCI_AUTH                                how it signs\n"
        "  UPSTREAM_TIMEOUT_SECONDS, MAX_INFLIGHT_PER_TARGET, REPLICA_FETCH_CAP\n"
        "  OCI_MONITORING, LOG_LEVEL\n\n" + _SEE,
    ),
    "start": (
        "Run the whole stack in the foreground under supervisord: the signing proxy, "
        "Prometheus, Alertmanager and, when its binary is found, Grafana. Checks the settings, "
        "credentials, binaries, ports and DATA_DIR first; prints `aqua-metrics: ready; ...` when "
        "every component answers, and the generated Grafana admin password on the first start. "
        "SIGTERM or Ctrl-C stops everything (exit 0); exit 1 when a program kept failing, 2 for "
        "a bad setting. The image's default command.",
        "main settings:\n"
        "  TARGET, TARGETS, OCI_COMPARTMENT_ID, OCI_AUTH   what to watch, and how to sign\n"
        "  DATA_DIR                 Prometheus data, Grafana database, secrets\n"
        "  SCRAPE_INTERVAL          how often each deployment is scraped (15s)\n"
        "  GRAFANA_ENABLED, GRAFANA_PORT, GF_SECURITY_ADMIN_PASSWORD\n"
        "  PROMETHEUS_BIN, ALERTMANAGER_BIN, GRAFANA_BIN   outside the image\n"
        "  PROMETHEUS_EXPOSE, OCI_NOTIFICATION_TOPIC_ID, ALERT_SLACK_WEBHOOK_URL\n\n" + _SEE,
    ),
    "health": (
        "Check that each component of a running stack answers: the proxy's /readyz, "
        "Prometheus' and Alertmanager's /-/ready and, when Grafana runs, its /api/health. One "
        "line each; exit 0 when all answer, 1 otherwise. The image's HEALTHCHECK. Give it the "
        "same settings as the stack.",
        "main settings:\n"
        "  PROXY_PORT, PROMETHEUS_PORT, ALERTMANAGER_PORT, GRAFANA_PORT\n"
        "  PROMETHEUS_BASIC_AUTH_USER, PROMETHEUS_BASIC_AUTH_PASSWORD   when Prometheus is exposed\n"
        "  GRAFANA_ENABLED\n\n" + _SEE,
    ),
    "test-alert": (
        "Send a test alert through the running Alertmanager to every configured receiver and "
        "print what each answered, one line each. Takes ALERT_GROUP_WAIT plus a few seconds; "
        "the test alert is then resolved, so a resolved notification follows. Exit 0 when "
        "every receiver took it.",
        "main settings:\n"
        "  OCI_NOTIFICATION_TOPIC_ID, ALERT_SLACK_WEBHOOK_URL, ALERT_WEBHOOK_URL,\n"
        "  ALERT_EMAIL_TO             the receivers\n"
        "  ALERTMANAGER_PORT, ALERT_GROUP_WAIT\n\n" + _SEE,
    ),
    "ctl": (
        "supervisorctl for the running stack, found through DATA_DIR: "
        "`aqua-metrics ctl status`, `aqua-metrics ctl restart prometheus`.",
        "main settings:\n  DATA_DIR   the running stack's data folder\n\n" + _SEE,
    ),
    "run": (
        "Internal: start one program of the stack as supervisord does (prometheus, "
        "alertmanager, grafana or fatal-listener). Not a command for users.",
        "main settings:\n  DATA_DIR, PROMETHEUS_BIN, ALERTMANAGER_BIN, GRAFANA_BIN\n\n" + _SEE,
    ),
}


def command_help(name: str) -> dict[str, Any]:
    """Keyword arguments for `add_parser(name, ...)`: description, epilog, layout kept."""
    if name not in _HELP:
        return {}
    description, epilog = _HELP[name]
    return {
        "description": textwrap.fill(description, width=88),
        "epilog": epilog,
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }
