"""Grafana panel builders: the JSON of each panel type the dashboards use.

A builder returns a panel without a place: `layout.Layout` gives it its id and gridPos.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Json = dict[str, Any]

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
DATASOURCE_UID = "aqua-prometheus"
DATASOURCE_NAME = "Prometheus"


def target(
    expr: str,
    legend: str = "__auto",
    ref: str = "A",
    *,
    instant: bool = False,
    fmt: str = "time_series",
) -> Json:
    return {
        "datasource": DATASOURCE,
        "editorMode": "code",
        "expr": expr,
        "format": fmt,
        "instant": instant,
        "legendFormat": legend,
        "range": not instant,
        "refId": ref,
    }


def targets(*pairs: tuple[str, str]) -> list[Json]:
    """Range targets from (legend, expr) pairs, refIds A, B, C..."""
    return [target(expr, legend, chr(ord("A") + i)) for i, (legend, expr) in enumerate(pairs)]


def thresholds(*steps: tuple[float | None, str]) -> Json:
    return {
        "mode": "absolute",
        "steps": [{"color": color, "value": value} for value, color in steps],
    }


def _base(kind: str, title: str, description: str, tgts: list[Json] | None) -> Json:
    """A panel's common keys; `id` and `gridPos` are placeholders the layout fills in."""
    panel: Json = {"id": 0, "type": kind, "title": title, "description": description}
    if tgts is not None:
        panel["datasource"] = DATASOURCE
        panel["targets"] = tgts
    panel["gridPos"] = {}
    return panel


def timeseries(
    title: str,
    description: str,
    tgts: list[Json],
    *,
    unit: str,
    steps: Sequence[tuple[float | None, str]] = ((None, "green"),),
    threshold_style: str = "off",
    minimum: float | None = 0,
    maximum: float | None = None,
    stack: bool = False,
    bars: bool = False,
    fill: int = 10,
) -> Json:
    custom: Json = {
        "axisSoftMin": 0,
        "drawStyle": "bars" if bars else "line",
        "fillOpacity": 80 if bars else fill,
        "lineWidth": 1,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"group": "A", "mode": "normal" if stack else "none"},
        "thresholdsStyle": {"mode": threshold_style},
    }
    defaults: Json = {
        "color": {"mode": "palette-classic"},
        "custom": custom,
        "thresholds": thresholds(*steps),
        "unit": unit,
    }
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    panel = _base("timeseries", title, description, tgts)
    panel["fieldConfig"] = {"defaults": defaults, "overrides": []}
    panel["options"] = {
        "legend": {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return panel


# A quantile over a window without requests is NaN (0/0 inside histogram_quantile).
NAN_MAPPINGS = [
    {"type": "special", "options": {"match": "nan", "result": {"index": 0, "text": "No traffic"}}}
]


def stat(
    title: str,
    description: str,
    tgts: list[Json],
    *,
    unit: str,
    steps: Sequence[tuple[float | None, str]] = ((None, "blue"),),
    mappings: list[Json] | None = None,
    color_mode: str = "value",
    graph: bool = True,
    no_value: str = "No traffic",
    decimals: int | None = None,
) -> Json:
    defaults: Json = {
        "color": {"mode": "thresholds"},
        "mappings": NAN_MAPPINGS if mappings is None else mappings,
        "noValue": no_value,
        "thresholds": thresholds(*steps),
        "unit": unit,
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    panel = _base("stat", title, description, tgts)
    panel["fieldConfig"] = {"defaults": defaults, "overrides": []}
    panel["options"] = {
        "colorMode": color_mode,
        "graphMode": "area" if graph else "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "showPercentChange": False,
        "textMode": "auto",
        "wideLayout": True,
    }
    return panel


UP_MAPPINGS = [
    {
        "type": "value",
        "options": {
            "0": {"color": "red", "index": 0, "text": "DOWN"},
            "1": {"color": "green", "index": 1, "text": "UP"},
        },
    }
]


def state_timeline(title: str, description: str, tgts: list[Json], *, unit: str = "none") -> Json:
    panel = _base("state-timeline", title, description, tgts)
    panel["fieldConfig"] = {
        "defaults": {
            "color": {"mode": "thresholds"},
            "custom": {"fillOpacity": 80, "lineWidth": 0},
            "mappings": UP_MAPPINGS,
            "thresholds": thresholds((None, "red"), (1, "green")),
            "unit": unit,
        },
        "overrides": [],
    }
    panel["options"] = {
        "alignValue": "center",
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False},
        "mergeValues": True,
        "rowHeight": 0.8,
        "showValue": "auto",
        "tooltip": {"mode": "single", "sort": "none"},
    }
    return panel


def heatmap(title: str, description: str, expr: str, *, y_unit: str) -> Json:
    tgt = target(expr, "{{le}}")
    tgt["format"] = "heatmap"
    panel = _base("heatmap", title, description, [tgt])
    panel["fieldConfig"] = {
        "defaults": {
            "custom": {
                "hideFrom": {"legend": False, "tooltip": False, "viz": False},
                "scaleDistribution": {"type": "linear"},
            },
            "unit": "reqps",
        },
        "overrides": [],
    }
    panel["options"] = {
        "calculate": False,
        "cellGap": 1,
        "cellValues": {"unit": "reqps"},
        "color": {
            "exponent": 0.5,
            "fill": "dark-orange",
            "mode": "scheme",
            "reverse": False,
            "scale": "exponential",
            "scheme": "Oranges",
            "steps": 64,
        },
        "exemplars": {"color": "rgba(255,0,255,0.7)"},
        "filterValues": {"le": 1e-09},
        "legend": {"show": True},
        "rowsFrame": {"layout": "auto"},
        "showValue": "never",
        "tooltip": {"mode": "single", "showColorScale": False, "yHistogram": False},
        "yAxis": {"axisPlacement": "left", "reverse": False, "unit": y_unit},
    }
    return panel


def table(
    title: str,
    description: str,
    tgts: list[Json],
    *,
    unit: str,
    exclude: Sequence[str] = ("Time",),
    rename: dict[str, str] | None = None,
    mappings: list[Json] | None = None,
    no_value: str = "No data",
) -> Json:
    panel = _base("table", title, description, tgts)
    panel["fieldConfig"] = {
        "defaults": {
            "custom": {"align": "auto", "cellOptions": {"type": "auto"}},
            "mappings": mappings or [],
            "noValue": no_value,
            "thresholds": thresholds((None, "green")),
            "unit": unit,
        },
        "overrides": [],
    }
    panel["options"] = {"cellHeight": "sm", "footer": {"show": False}, "showHeader": True}
    panel["transformations"] = [
        {"id": "merge", "options": {}},
        {
            "id": "organize",
            "options": {
                "excludeByName": dict.fromkeys(exclude, True),
                "renameByName": rename or {},
            },
        },
    ]
    return panel


def alertlist(title: str, description: str, options: Json) -> Json:
    panel = _base("alertlist", title, description, None)
    panel["options"] = options
    return panel
