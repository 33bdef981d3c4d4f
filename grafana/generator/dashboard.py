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


def query_variable(name: str, label: str, query: str, description: str) -> Json:
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
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
        "type": "query",
    }


DEPLOYMENT_VARIABLE = query_variable(
    "deployment",
    "Deployment",
    'label_values(up{job="vllm"}, deployment)',
    "Model deployments Prometheus scrapes through the proxy (the `deployment` target label).",
)
MODEL_VARIABLE = query_variable(
    "model_name",
    "Model",
    'label_values(vllm:num_requests_running{job="vllm", deployment=~"$deployment"}, model_name)',
    "Served model names reported by vLLM on the selected deployments.",
)
