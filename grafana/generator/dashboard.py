"""A dashboard's envelope (links, refresh, time range) and its template variables."""

from __future__ import annotations

from collections.abc import Iterable

from grafana.generator.panels import DATASOURCE, DATASOURCE_NAME, DATASOURCE_UID, Json

SCHEMA_VERSION = 41  # Grafana 12.0-12.x; newer Grafana migrates it on load.


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[Json],
    variables: list[Json],
    tags: Iterable[str],
    links: Iterable[Json] = (),
) -> Json:
    return {
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [
            {
                "asDropdown": False,
                "icon": "external link",
                "includeVars": False,
                "keepTime": True,
                "tags": ["aqua"],
                "targetBlank": False,
                "title": "AQUA dashboards",
                "tooltip": "",
                "type": "dashboards",
                "url": "",
            },
            *links,
        ],
        "liveNow": False,
        "panels": panels,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "tags": list(tags),
        "templating": {"list": variables},
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


def dashboard_link(title: str, uid: str, slug: str, tooltip: str) -> Json:
    """A link in the dashboard's header to another dashboard, keeping the time range."""
    return {
        "asDropdown": False,
        "icon": "dashboard",
        "includeVars": False,
        "keepTime": True,
        "tags": [],
        "targetBlank": False,
        "title": title,
        "tooltip": tooltip,
        "type": "link",
        "url": f"/d/{uid}/{slug}",
    }


DATASOURCE_VARIABLE: Json = {
    "current": {"selected": False, "text": DATASOURCE_NAME, "value": DATASOURCE_UID},
    "hide": 0,
    "includeAll": False,
    "label": "Data source",
    "multi": False,
    "name": "datasource",
    "options": [],
    "query": "prometheus",
    "refresh": 1,
    "regex": "",
    "skipUrlSync": False,
    "type": "datasource",
}


def query_variable(name: str, label: str, query: str, description: str, *, regex: str = "") -> Json:
    """A multi-value query variable with "All" (`.*`). `regex` filters or reshapes the options as
    Grafana's variable regex does (named groups `text` and `value` set each option's two parts)."""
    return {
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "datasource": DATASOURCE,
        "definition": query,
        "description": description,
        "hide": 0,
        "includeAll": True,
        "label": label,
        "multi": True,
        "name": name,
        "options": [],
        "query": query,
        "refresh": 2,
        "regex": regex,
        "skipUrlSync": False,
        "sort": 1,
        "type": "query",
    }


# Each scraped deployment once, with a `name` label: its display name where discovery gave one,
# else its deployment name (TARGET/TARGETS without discovery).
_NAMED_DEPLOYMENTS = (
    'max by (deployment, name) (label_replace(label_replace(up{job="vllm"}, "name", "$1", '
    '"deployment", "(.*)"), "name", "$1", "display_name", "(.+)"))'
)
# Grafana renders a `query_result` sample as `{deployment="...",name="..."} <value> <ms>` (labels
# in Prometheus' order, values unescaped); the named groups make `name` the option's text and
# `deployment` its value, so panels and links keep filtering on the `deployment` label.
DEPLOYMENT_OPTION_REGEX = r'/\{deployment="(?<value>[^"]+)",name="(?<text>.*)"\}/'
DEPLOYMENT_VARIABLE = query_variable(
    "deployment",
    "Deployment",
    f"query_result({_NAMED_DEPLOYMENTS})",
    "Model deployments Prometheus scrapes through the proxy, by display name (the name the OCI "
    "console shows; the deployment name where discovery gives none). The value is the "
    "`deployment` target label.",
    regex=DEPLOYMENT_OPTION_REGEX,
)
MODEL_VARIABLE = query_variable(
    "model_name",
    "Model",
    'label_values(vllm:num_requests_running{job="vllm", deployment=~"$deployment"}, model_name)',
    "Served model names reported by vLLM on the selected deployments.",
)
