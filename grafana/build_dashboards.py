"""Generates the provisioned Grafana dashboards of aqua-metrics.

Grafana reads the committed JSON in `grafana/provisioning/dashboards/aqua/`; this script is the
source of that JSON (a test checks they are equal). Run it after editing:

    .venv/bin/python grafana/build_dashboards.py          # rewrite the JSON files
    .venv/bin/python grafana/build_dashboards.py --check  # exit 1 if they are stale

PromQL conventions used throughout (see also the descriptions shown in Grafana):

- Every vLLM selector filters `job="vllm"`, `deployment=~"$deployment"` and, where the family has
  the label, `model_name=~"$model_name"`.
- Families vLLM renamed are read as `new or on (deployment) old`: each side is first aggregated
  per deployment, so a deployment on an old vLLM falls back to the old name while one on a new vLLM
  (or one exposing both names during a deprecation window) uses the new name only. A plain
  `rate(new) or rate(old)` would be wrong: `rate()` drops the metric name, so the old series would
  survive wherever its label set differs from the new one's and both would be summed.
- Quantiles are `histogram_quantile(q, sum by (le) (...))` over `rate()` of the buckets, never of
  raw counters; ratios divide by `(denominator > 0)` so an idle deployment shows no value, not NaN.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DASHBOARD_DIR = HERE / "provisioning" / "dashboards" / "aqua"

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
DATASOURCE_UID = "aqua-prometheus"
DATASOURCE_NAME = "Prometheus"
SCHEMA_VERSION = 41  # Grafana 12.0-12.x; newer Grafana migrates it on load.
RATE = "$__rate_interval"

Json = dict[str, Any]


# --------------------------------------------------------------------------------------------
# PromQL helpers
# --------------------------------------------------------------------------------------------

VLLM_MATCHERS = 'job="vllm", deployment=~"$deployment", model_name=~"$model_name"'
TARGET_MATCHERS = 'job="vllm", deployment=~"$deployment"'


@dataclass(frozen=True)
class Family:
    """A vLLM metric name, and the name older vLLM releases exposed the same data under."""

    new: str
    old: str | None = None


def sel(metric: str, extra: str = "", *, model: bool = True) -> str:
    """A selector for a vLLM-job series, filtered by the dashboard variables."""
    matchers = VLLM_MATCHERS if model else TARGET_MATCHERS
    return f"{metric}{{{matchers}{', ' + extra if extra else ''}}}"


def by(labels: Sequence[str]) -> str:
    return f"by ({', '.join(labels)})"


METRIC = "@metric@"  # Placeholder for the metric name in a rendered expression.


def _with_fallback(render: str, family: Family, labels: Sequence[str]) -> str:
    """`render` applied to the new name, falling back per deployment to the old name."""
    new = render.replace(METRIC, family.new)
    if family.old is None:
        return new
    if "deployment" not in labels:
        raise ValueError("a fallback must keep the deployment label to decide per deployment")
    return f"{new} or on (deployment) {render.replace(METRIC, family.old)}"


def counter_rate(
    family: Family, labels: Sequence[str] = ("deployment",), extra: str = "", suffix: str = ""
) -> str:
    """`sum by (labels) (rate(...))`, per deployment falling back to the old name."""
    render = f"sum {by(labels)} (rate({sel(METRIC + suffix, extra)}[{RATE}]))"
    return _with_fallback(render, family, labels)


def gauge(
    family: Family, agg: str, labels: Sequence[str] = ("deployment",), extra: str = ""
) -> str:
    render = f"{agg} {by(labels)} ({sel(METRIC, extra)})"
    return _with_fallback(render, family, labels)


def quantile(q: float, family: Family, *, split: bool) -> str:
    """q-quantile of a histogram family: per deployment when `split`, else over the selection."""
    if split:
        return f"histogram_quantile({q}, {counter_rate(family, ('deployment', 'le'), suffix='_bucket')})"
    if family.old is None:
        return f"histogram_quantile({q}, {counter_rate(family, ('le',), suffix='_bucket')})"
    inner = counter_rate(family, ("deployment", "le"), suffix="_bucket")
    return f"histogram_quantile({q}, sum by (le) ({inner}))"


def histogram_mean(family: Family) -> str:
    """Mean observation over the selection: rate of _sum over rate of _count."""
    total = counter_rate(family, suffix="_sum")
    count = counter_rate(family, suffix="_count")
    if family.old is None:
        return (
            f"sum(rate({sel(family.new + '_sum')}[{RATE}])) / "
            f"(sum(rate({sel(family.new + '_count')}[{RATE}])) > 0)"
        )
    return f"sum({total}) / (sum({count}) > 0)"


def ratio(numerator: str, denominator: str) -> str:
    return f"({numerator}) / (({denominator}) > 0)"


def zero_if_absent(expr: str, label: str) -> str:
    """`expr`, or one zero series labelled `label="none"` while the proxy is up and `expr` is empty.

    prometheus-client creates a labelled child on first use, so a counter of failures has no series
    at all until the first failure: without this the panel would read "No data" exactly when all is
    well, and look the same as a proxy that is down.
    """
    zero = f'label_replace(0 * max(up{{job="aqua-proxy"}}), "{label}", "none", "", "")'
    return f"{expr} or on () {zero}"


# --------------------------------------------------------------------------------------------
# Metric families
# --------------------------------------------------------------------------------------------

TTFT = Family("vllm:time_to_first_token_seconds")
ITL = Family("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds")
TPOT = Family("vllm:request_time_per_output_token_seconds")
E2E = Family("vllm:e2e_request_latency_seconds")
QUEUE = Family("vllm:request_queue_time_seconds")
PREFILL = Family("vllm:request_prefill_time_seconds")
DECODE = Family("vllm:request_decode_time_seconds")
INFERENCE = Family("vllm:request_inference_time_seconds")
KV_USAGE = Family("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
PREFIX_HITS = Family("vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total")
PREFIX_QUERIES = Family("vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total")
PROMPT_TOKENS = Family("vllm:prompt_tokens_total")
GENERATION_TOKENS = Family("vllm:generation_tokens_total")
# vLLM 0.3 had no request_success_total; every version counts finished requests in the e2e
# histogram, so that is the fallback for the request rate.
REQUEST_SUCCESS = Family("vllm:request_success_total")
RUNNING = Family("vllm:num_requests_running")
WAITING = Family("vllm:num_requests_waiting")
WAITING_BY_REASON = Family("vllm:num_requests_waiting_by_reason")
PREEMPTIONS = Family("vllm:num_preemptions_total")
PROMPT_LEN = Family("vllm:request_prompt_tokens")
GENERATION_LEN = Family("vllm:request_generation_tokens")
SPEC_ACCEPTED = Family("vllm:spec_decode_num_accepted_tokens_total")
SPEC_DRAFT_TOKENS = Family("vllm:spec_decode_num_draft_tokens_total")
SPEC_DRAFTS = Family("vllm:spec_decode_num_drafts_total")
SPEC_PER_POS = Family("vllm:spec_decode_num_accepted_tokens_per_pos_total")

REQUEST_RATE = (
    f"{counter_rate(REQUEST_SUCCESS)} or on (deployment) "
    f"sum by (deployment) (rate({sel(E2E.new + '_count')}[{RATE}]))"
)
HTTP_ALL = sel("http_requests_total", model=False)
# prometheus-fastapi-instrumentator groups status codes ("5xx"); `5..` also matches "503".
HTTP_5XX = sel("http_requests_total", 'status=~"5.."', model=False)
HTTP_5XX_RATIO = ratio(
    f"sum by (deployment) (rate({HTTP_5XX}[{RATE}])) or on (deployment) "
    f"0 * sum by (deployment) (rate({HTTP_ALL}[{RATE}]))",
    f"sum by (deployment) (rate({HTTP_ALL}[{RATE}]))",
)
# vLLM 0.6 (V0) had no prefix-cache counters, only a hit-rate gauge: the last fallback.
PREFIX_HIT_RATE = (
    f"({ratio(counter_rate(PREFIX_HITS), counter_rate(PREFIX_QUERIES))}) or on (deployment) "
    f"avg by (deployment) ({sel('vllm:gpu_prefix_cache_hit_rate')})"
)
DEMO_UP = sel("up", 'demo="true"', model=False)


# --------------------------------------------------------------------------------------------
# Panel builders
# --------------------------------------------------------------------------------------------


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


def grid(x: int, y: int, w: int, h: int) -> Json:
    return {"h": h, "w": w, "x": x, "y": y}


def _base(
    pid: int, kind: str, title: str, description: str, pos: Json, tgts: list[Json] | None
) -> Json:
    panel: Json = {"id": pid, "type": kind, "title": title, "description": description}
    if tgts is not None:
        panel["datasource"] = DATASOURCE
        panel["targets"] = tgts
    panel["gridPos"] = pos
    return panel


def timeseries(
    pid: int,
    title: str,
    description: str,
    pos: Json,
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
    panel = _base(pid, "timeseries", title, description, pos, tgts)
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
    pid: int,
    title: str,
    description: str,
    pos: Json,
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
    panel = _base(pid, "stat", title, description, pos, tgts)
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


def state_timeline(
    pid: int, title: str, description: str, pos: Json, tgts: list[Json], *, unit: str = "none"
) -> Json:
    panel = _base(pid, "state-timeline", title, description, pos, tgts)
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


def heatmap(pid: int, title: str, description: str, pos: Json, expr: str, *, y_unit: str) -> Json:
    tgt = target(expr, "{{le}}")
    tgt["format"] = "heatmap"
    panel = _base(pid, "heatmap", title, description, pos, [tgt])
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
    pid: int,
    title: str,
    description: str,
    pos: Json,
    tgts: list[Json],
    *,
    unit: str,
    exclude: Sequence[str] = ("Time",),
    rename: dict[str, str] | None = None,
    mappings: list[Json] | None = None,
    no_value: str = "No data",
) -> Json:
    panel = _base(pid, "table", title, description, pos, tgts)
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


def row(pid: int, title: str, y: int, children: list[Json] | None = None) -> Json:
    """A row; with `children` it is collapsed and holds them (their gridPos as if expanded)."""
    return {
        "id": pid,
        "type": "row",
        "title": title,
        "collapsed": children is not None,
        "gridPos": grid(0, y, 24, 1),
        "panels": children or [],
    }


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[Json],
    variables: list[Json],
    tags: Iterable[str],
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
            }
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


# --------------------------------------------------------------------------------------------
# Dashboard: vLLM deployment
# --------------------------------------------------------------------------------------------

LATENCY_HELP = (
    "Percentiles are interpolated inside vLLM's histogram buckets, so they are estimates; the mean "
    "(sum over count) is exact. With several deployments selected the percentiles describe all "
    "their requests together; deployments on different vLLM releases may use different bucket "
    "bounds, which blurs such combined percentiles: select one deployment for exact figures."
)


def latency_panel(
    pid: int,
    title: str,
    family: Family,
    pos: Json,
    meaning: str,
    action: str,
    *,
    steps: Sequence[tuple[float | None, str]] = ((None, "green"),),
) -> Json:
    pairs = [
        (f"p{round(q * 100)}", quantile(q, family, split=False)) for q in (0.5, 0.9, 0.95, 0.99)
    ]
    pairs.append(("mean", histogram_mean(family)))
    names = f"`{family.new}`" + (f" (older vLLM: `{family.old}`)" if family.old else "")
    description = f"{meaning}\n\n**When it is bad:** {action}\n\n{LATENCY_HELP}\n\nMetric: {names}"
    return timeseries(
        pid,
        title,
        description,
        pos,
        targets(*pairs),
        unit="s",
        steps=steps,
        threshold_style="dashed" if len(steps) > 1 else "off",
    )


def vllm_dashboard() -> Json:
    demo_mappings = [
        {
            "type": "value",
            "options": {
                "0": {
                    "color": "transparent",
                    "index": 0,
                    "text": "Live data: no simulated deployment is selected",
                }
            },
        },
        {
            "type": "range",
            "options": {
                "from": 1,
                "to": None,
                "result": {
                    "color": "orange",
                    "index": 1,
                    "text": (
                        "DEMO DATA: the built-in simulated deployment is selected; its numbers are "
                        "generated, not measured"
                    ),
                },
            },
        },
    ]
    banner = stat(
        1,
        "Data origin",
        "Shows **DEMO DATA** while the selected deployments include the built-in simulator "
        '(target label `demo="true"`), which aqua-metrics serves when no real deployment is '
        "configured, so that nobody mistakes its generated numbers for a real service. To monitor "
        "real model deployments, configure them (see the README) and pick them in *Deployment*.",
        grid(0, 0, 24, 2),
        [target(f"count({DEMO_UP}) or vector(0)")],
        unit="none",
        steps=((None, "transparent"), (1, "orange")),
        mappings=demo_mappings,
        color_mode="background",
        graph=False,
        no_value="Live data",
    )

    tiles_1 = [
        stat(
            2,
            "Scrape up",
            "Whether Prometheus could scrape each deployment's metrics through the proxy at the last "
            "attempt. **DOWN** means every other panel is going stale for that deployment. Open the "
            "*Monitoring health* dashboard: the proxy's failure kinds tell a refused signature "
            "(IAM policy or dynamic group), a timeout or an error status apart; "
            "404 NotAuthorizedOrNotFound means a wrong OCID or missing permission.",
            grid(0, 2, 4, 4),
            [target(f"max by (deployment) ({sel('up', model=False)})", "{{deployment}}")],
            unit="none",
            steps=((None, "red"), (1, "green")),
            mappings=UP_MAPPINGS,
            color_mode="background",
            graph=False,
            no_value="No target",
        ),
        stat(
            3,
            "Requests / s",
            "Requests finished per second (any finish reason), per deployment. A sudden drop to "
            "zero while clients are sending means requests are not reaching the engine.\n\n"
            "Metric: `vllm:request_success_total` (vLLM 0.3: `vllm:e2e_request_latency_seconds_count`)",
            grid(4, 2, 4, 4),
            [target(REQUEST_RATE, "{{deployment}}")],
            unit="reqps",
        ),
        stat(
            4,
            "HTTP 5xx ratio",
            "Share of API requests the vLLM server answered with a 5xx status. Above 5% for 5 "
            "minutes raises *AquaHigh5xxRatio*: look for engine errors (out of memory, CUDA errors, "
            "a dead engine) in the deployment's logs. Errors after a stream has started are not "
            "counted here (see *Requests / s by finish reason*).\n\nMetric: `http_requests_total`",
            grid(8, 2, 4, 4),
            [target(HTTP_5XX_RATIO, "{{deployment}}")],
            unit="percentunit",
            steps=((None, "green"), (0.01, "orange"), (0.05, "red")),
        ),
        stat(
            5,
            "TTFT p95",
            "95th percentile time to first token: queueing, prefill and the first decode step. "
            "High with a long queue means too little capacity; high with short queues points at "
            "long prompts (see *Request shapes*).\n\nMetric: `vllm:time_to_first_token_seconds`",
            grid(12, 2, 4, 4),
            [target(quantile(0.95, TTFT, split=True), "{{deployment}}")],
            unit="s",
            steps=((None, "green"), (2, "orange"), (10, "red")),
        ),
        stat(
            6,
            "Inter-token latency p95",
            "95th percentile time between two streamed tokens, what a reader of a streamed answer "
            "feels as speed. It rises with batch size and with prefills of other requests "
            "interleaved into decoding.\n\nMetric: `vllm:inter_token_latency_seconds` (older vLLM: "
            "`vllm:time_per_output_token_seconds`)",
            grid(16, 2, 4, 4),
            [target(quantile(0.95, ITL, split=True), "{{deployment}}")],
            unit="s",
            steps=((None, "green"), (0.1, "orange"), (0.25, "red")),
        ),
        stat(
            7,
            "End-to-end p95",
            "95th percentile request latency from arrival to the last token. Above 30 s for 10 "
            "minutes raises *AquaE2EP95High*. Long outputs make long requests: compare with the "
            "generation length distribution before blaming the server.\n\n"
            "Metric: `vllm:e2e_request_latency_seconds`",
            grid(20, 2, 4, 4),
            [target(quantile(0.95, E2E, split=True), "{{deployment}}")],
            unit="s",
            steps=((None, "green"), (15, "orange"), (30, "red")),
        ),
    ]
    tiles_2 = [
        stat(
            8,
            "KV cache usage",
            "Share of the GPU KV cache in use, averaged over the deployment's engines (summing "
            "per-engine fractions would exceed 100%). Near 100% new requests wait and running ones "
            "get preempted; above 90% for 10 minutes raises *AquaKVCacheNearFull*.\n\n"
            "Metric: `vllm:kv_cache_usage_perc` (older vLLM: `vllm:gpu_cache_usage_perc`)",
            grid(0, 6, 4, 4),
            [target(gauge(KV_USAGE, "avg"), "{{deployment}}")],
            unit="percentunit",
            steps=((None, "green"), (0.8, "orange"), (0.9, "red")),
            no_value="No data",
        ),
        stat(
            9,
            "Running requests",
            "Requests in the engine's running batch now. Flat at the configured `--max-num-seqs` "
            "means the batch is full and further requests queue.\n\n"
            "Metric: `vllm:num_requests_running`",
            grid(4, 6, 4, 4),
            [target(gauge(RUNNING, "sum"), "{{deployment}}")],
            unit="short",
            no_value="No data",
        ),
        stat(
            10,
            "Waiting requests",
            "Requests queued for the engine now. A queue that keeps growing means demand exceeds "
            "capacity: add replicas or a larger shape; above 50 for 5 minutes raises "
            "*AquaWaitingQueueBacklog*.\n\nMetric: `vllm:num_requests_waiting`",
            grid(8, 6, 4, 4),
            [target(gauge(WAITING, "sum"), "{{deployment}}")],
            unit="short",
            steps=((None, "green"), (10, "orange"), (50, "red")),
            no_value="No data",
        ),
        stat(
            11,
            "Prefix cache hit rate",
            "Share of prompt tokens found in the prefix cache, from the rates of hits and queries "
            "(not from the raw counters, which would average over the server's whole life). Low "
            "values are normal for unrelated prompts; a shared system prompt should give a high "
            "rate.\n\nMetrics: `vllm:prefix_cache_{hits,queries}_total` (older vLLM: "
            "`vllm:gpu_prefix_cache_{hits,queries}_total`; vLLM 0.6: the `vllm:gpu_prefix_cache_hit_rate` gauge)",
            grid(12, 6, 4, 4),
            [target(PREFIX_HIT_RATE, "{{deployment}}")],
            unit="percentunit",
        ),
        stat(
            12,
            "Generation tokens / s",
            "Output tokens generated per second. With requests running, zero for 5 minutes "
            "raises *AquaGenerationStalled* (a hung engine).\n\n"
            "Metric: `vllm:generation_tokens_total`",
            grid(16, 6, 4, 4),
            [target(counter_rate(GENERATION_TOKENS), "{{deployment}}")],
            unit="count:tok/s",
        ),
        stat(
            13,
            "Counter resets (time range)",
            "How many times vLLM's generation-token counter went backwards in the selected time "
            "range. One per server restart is normal. Many mean the scrapes alternate between "
            "replicas behind the deployment's load balancer: every rate on this dashboard is then "
            "wrong (too high), while gauges stay meaningful. Run one instance per deployment, or "
            "read only the gauges.\n\nMetric: `resets(vllm:generation_tokens_total)`",
            grid(20, 6, 4, 4),
            [
                target(
                    f"max by (deployment) (resets({sel(GENERATION_TOKENS.new)}[$__range]))",
                    "{{deployment}}",
                    instant=True,
                )
            ],
            unit="short",
            steps=((None, "green"), (1, "orange"), (4, "red")),
            graph=False,
            no_value="No data",
            decimals=0,
        ),
    ]

    latency = [
        row(20, "Latency", 10),
        latency_panel(
            21,
            "Time to first token",
            TTFT,
            grid(0, 11, 8, 8),
            "Time from a request's arrival to its first output token: queueing, prefill and the "
            "first decode step. It is what a user waits before anything appears.",
            "check *Queue time* first (capacity), then *Prefill time* (long prompts, low prefix "
            "cache hit rate). *AquaTTFTP99High* fires when p99 stays above 10 s.",
            steps=((None, "green"), (2, "orange"), (10, "red")),
        ),
        latency_panel(
            22,
            "Inter-token latency",
            ITL,
            grid(8, 11, 8, 8),
            "Time between two consecutive output tokens of a request, sampled for every token: the "
            "streaming speed a reader sees.",
            "large batches and prefills interleaved into decoding slow every stream; lower "
            "`--max-num-seqs` or `--max-num-batched-tokens`, or add replicas.",
            steps=((None, "green"), (0.1, "orange"), (0.25, "red")),
        ),
        latency_panel(
            23,
            "Time per output token (per request)",
            TPOT,
            grid(16, 11, 8, 8),
            "Each finished request's decode time divided by its output tokens: one sample per "
            "request, so a request with few tokens weighs as much as a long one (unlike "
            "inter-token latency). Only newer vLLM releases report it.",
            "same causes as inter-token latency; a gap between the two means a few long requests "
            "dominate the token-level view.",
            steps=((None, "green"), (0.1, "orange"), (0.25, "red")),
        ),
        latency_panel(
            24,
            "End-to-end request latency",
            E2E,
            grid(0, 19, 8, 8),
            "Time from arrival to the last token of each finished request.",
            "split it with the queue, prefill and decode panels to see where the time goes. "
            "*AquaE2EP95High* fires when p95 stays above 30 s.",
            steps=((None, "green"), (15, "orange"), (30, "red")),
        ),
        latency_panel(
            25,
            "Queue time",
            QUEUE,
            grid(8, 19, 8, 8),
            "Time requests spent waiting before the scheduler first ran them.",
            "queueing means demand exceeds capacity or the KV cache is full: add replicas or a "
            "larger shape, or limit clients' concurrency.",
            steps=((None, "green"), (1, "orange"), (5, "red")),
        ),
        latency_panel(
            26,
            "Prefill time",
            PREFILL,
            grid(16, 19, 8, 8),
            "Time spent computing the prompt (prefill phase) of each request.",
            "long prompts cost prefill time roughly in proportion to their length; a better prefix "
            "cache hit rate (shared prompt prefixes) shortens it.",
        ),
        latency_panel(
            27,
            "Decode time",
            DECODE,
            grid(0, 27, 8, 8),
            "Time spent generating the output tokens (decode phase) of each request.",
            "grows with output length (see *Generation length*) and with inter-token latency.",
        ),
        latency_panel(
            28,
            "Inference time",
            INFERENCE,
            grid(8, 27, 8, 8),
            "Time requests spent in the running state (prefill plus decode, including time lost "
            "to preemption).",
            "much larger than prefill plus decode means requests were preempted and recomputed: "
            "see *Preemptions / s* and *KV cache usage*.",
        ),
        timeseries(
            29,
            "Mean time per request phase",
            "Where an average request spends its time: waiting in the queue, computing its prompt "
            "(prefill) and generating its output (decode). Stacked, the total approximates the "
            "mean end-to-end latency.\n\n**When it is bad:** a growing *queue* share calls for "
            "capacity; *prefill* for shorter prompts or better prefix caching; *decode* for shorter "
            "outputs or smaller batches.\n\nMetrics: `vllm:request_{queue,prefill,decode}_time_seconds`",
            grid(16, 27, 8, 8),
            targets(
                ("queue", histogram_mean(QUEUE)),
                ("prefill", histogram_mean(PREFILL)),
                ("decode", histogram_mean(DECODE)),
            ),
            unit="s",
            stack=True,
            fill=40,
        ),
    ]

    throughput = [
        row(30, "Throughput and requests", 35),
        timeseries(
            31,
            "Token throughput",
            "Prompt tokens processed and output tokens generated per second, per deployment. "
            "Prompt tokens include those served from the prefix cache.\n\n**When it is bad:** "
            "falling throughput with a growing queue means the engine slowed down (preemptions, "
            "long prompts); falling with an empty queue just means less traffic.\n\n"
            "Metrics: `vllm:prompt_tokens_total`, `vllm:generation_tokens_total`",
            grid(0, 36, 6, 8),
            targets(
                ("{{deployment}} prompt", counter_rate(PROMPT_TOKENS)),
                ("{{deployment}} generation", counter_rate(GENERATION_TOKENS)),
            ),
            unit="count:tok/s",
        ),
        timeseries(
            32,
            "Requests / s by finish reason",
            "Finished requests per second by why they ended: *stop* (natural end), *length* "
            "(`max_tokens` or the context window reached), *abort* (client disconnected or "
            "cancelled), *error*.\n\n**When it is bad:** a rising *length* share means truncated "
            "answers; rising *abort* often means clients time out waiting (see TTFT); any *error* "
            "deserves a look at the deployment's logs.\n\nMetric: `vllm:request_success_total`",
            grid(6, 36, 6, 8),
            targets(
                (
                    "{{deployment}} {{finished_reason}}",
                    counter_rate(REQUEST_SUCCESS, ("deployment", "finished_reason")),
                )
            ),
            unit="reqps",
            stack=True,
            fill=30,
        ),
        timeseries(
            33,
            "HTTP requests by status class",
            "Requests per second the vLLM API server answered, by status class (vLLM groups codes "
            "as 2xx, 4xx, 5xx). This is the server's own view; requests the OCI gateway rejected "
            "never reach it.\n\n**When it is bad:** 4xx are client mistakes (bad model name, "
            "context too long); 5xx are server failures.\n\nMetric: `http_requests_total`",
            grid(12, 36, 6, 8),
            targets(
                (
                    "{{deployment}} {{status}}",
                    f"sum by (deployment, status) (rate({HTTP_ALL}[{RATE}]))",
                )
            ),
            unit="reqps",
            stack=True,
            fill=30,
        ),
        timeseries(
            34,
            "HTTP 5xx ratio",
            "Share of API requests answered with a 5xx status, per deployment.\n\n**When it is "
            "bad:** above 5% for 5 minutes raises *AquaHigh5xxRatio*; check the deployment's logs "
            "for out-of-memory or engine crashes and the KV cache panels for overload.\n\n"
            "Metric: `http_requests_total`",
            grid(18, 36, 6, 8),
            targets(("{{deployment}}", HTTP_5XX_RATIO)),
            unit="percentunit",
            steps=((None, "green"), (0.05, "red")),
            threshold_style="dashed",
        ),
    ]

    scheduler = [
        row(40, "Scheduler and KV cache", 44),
        timeseries(
            41,
            "Running and waiting requests",
            "Requests in the running batch and requests queued, per deployment.\n\n**When it is "
            "bad:** a waiting line that does not drain means the deployment is saturated: add "
            "instances or a larger shape, or reduce clients' concurrency.\n\n"
            "Metrics: `vllm:num_requests_running`, `vllm:num_requests_waiting`",
            grid(0, 45, 8, 8),
            targets(
                ("{{deployment}} running", gauge(RUNNING, "sum")),
                ("{{deployment}} waiting", gauge(WAITING, "sum")),
            ),
            unit="short",
        ),
        timeseries(
            42,
            "Waiting requests by reason",
            "Why queued requests wait: *capacity* (no room in the batch or the KV cache) or "
            "*deferred* (held back by a transient constraint such as the LoRA budget or a pending "
            "KV transfer). Only newer vLLM releases report it.\n\n**When it is bad:** *capacity* "
            "means more hardware or smaller requests; *deferred* points at adapter or connector "
            "limits.\n\nMetric: `vllm:num_requests_waiting_by_reason`",
            grid(8, 45, 8, 8),
            targets(
                (
                    "{{deployment}} {{reason}}",
                    gauge(WAITING_BY_REASON, "sum", ("deployment", "reason")),
                )
            ),
            unit="short",
            stack=True,
            fill=30,
        ),
        timeseries(
            43,
            "Preemptions / s",
            "Running requests evicted from the KV cache to make room, whose work is later "
            "recomputed.\n\n**When it is bad:** sustained preemption (above 1/s for 5 minutes "
            "raises *AquaPreemptions*) wastes GPU time; lower `--max-num-seqs`, shorten "
            "`--max-model-len` or give the KV cache more memory.\n\n"
            "Metric: `vllm:num_preemptions_total`",
            grid(16, 45, 8, 8),
            targets(("{{deployment}}", counter_rate(PREEMPTIONS))),
            unit="ops",
            steps=((None, "green"), (1, "red")),
            threshold_style="dashed",
        ),
        timeseries(
            44,
            "KV cache usage",
            "Share of the GPU KV cache in use: the average and the fullest engine of each "
            "deployment. Averaged, not summed, because each engine reports a fraction of its own "
            "cache; the maximum shows the engine that will preempt first. Behind a load balancer "
            "successive scrapes may read different replicas, so the line can zig-zag.\n\n"
            "**When it is bad:** close to 100% under load is expected; staying above 90% "
            "(*AquaKVCacheNearFull*) with queueing or preemptions means the cache is too small for "
            "the traffic.\n\nMetric: `vllm:kv_cache_usage_perc` (older vLLM: "
            "`vllm:gpu_cache_usage_perc`)",
            grid(0, 53, 12, 8),
            targets(
                ("{{deployment}} avg", gauge(KV_USAGE, "avg")),
                ("{{deployment}} max", gauge(KV_USAGE, "max")),
            ),
            unit="percentunit",
            maximum=1,
            steps=((None, "green"), (0.9, "red")),
            threshold_style="dashed",
        ),
        timeseries(
            45,
            "Prefix cache hit rate",
            "Share of prompt tokens served from the prefix cache, computed from the rates of hits "
            "and queries over each interval.\n\n**When it is bad:** a drop after a restart is "
            "normal (cold cache); a lasting low rate with shared prompts means the cache is too "
            "small or requests are spread over replicas that each warm their own cache.\n\n"
            "Metrics: `vllm:prefix_cache_{hits,queries}_total` (older vLLM: "
            "`vllm:gpu_prefix_cache_{hits,queries}_total`; vLLM 0.6: the `vllm:gpu_prefix_cache_hit_rate` gauge)",
            grid(12, 53, 12, 8),
            targets(("{{deployment}}", PREFIX_HIT_RATE)),
            unit="percentunit",
            maximum=1,
        ),
    ]

    shapes = [
        row(50, "Request shapes", 61),
        heatmap(
            51,
            "Prompt length distribution",
            "Finished requests per second by prompt length (tokens), over time. Each row is a "
            "histogram bucket, labelled by its upper bound.\n\n**When it is bad:** a shift to "
            "longer prompts explains higher TTFT and prefill time without any server fault.\n\n"
            "Metric: `vllm:request_prompt_tokens`",
            grid(0, 62, 8, 9),
            f"sum by (le) (rate({sel(PROMPT_LEN.new + '_bucket')}[{RATE}]))",
            y_unit="short",
        ),
        heatmap(
            52,
            "Generation length distribution",
            "Finished requests per second by output length (tokens), over time.\n\n**When it is "
            "bad:** longer outputs mean longer decode and end-to-end times; requests piling up at "
            "the top bucket usually hit `max_tokens` (see finish reason *length*).\n\n"
            "Metric: `vllm:request_generation_tokens`",
            grid(8, 62, 8, 9),
            f"sum by (le) (rate({sel(GENERATION_LEN.new + '_bucket')}[{RATE}]))",
            y_unit="short",
        ),
        timeseries(
            53,
            "Mean prompt and generation length",
            "Average prompt and output length of the requests finished in each interval, over the "
            "selected deployments.\n\n**When it is bad:** use it to tell a traffic change (longer "
            "prompts or answers) from a server slowdown when latency rises.\n\n"
            "Metrics: `vllm:request_prompt_tokens`, `vllm:request_generation_tokens`",
            grid(16, 62, 8, 9),
            targets(
                ("prompt", histogram_mean(PROMPT_LEN)),
                ("generation", histogram_mean(GENERATION_LEN)),
            ),
            unit="count:tok",
        ),
    ]

    quality = [
        row(60, "Data quality", 71),
        timeseries(
            61,
            "Counter resets (15 min window)",
            "Times vLLM's generation-token counter went backwards in the preceding 15 minutes. A "
            "single step marks a restart. A lasting plateau means successive scrapes reach "
            "different replicas behind the deployment's load balancer: each replica has its own "
            "counters, so every rate-based panel over-reports.\n\n**When it is bad:** above 3 "
            "raises *AquaReplicaCounterFlapping*. Trust gauges (running, waiting, KV cache) and "
            "treat rates as unreliable, or run one instance per deployment.\n\n"
            "Metric: `resets(vllm:generation_tokens_total[15m])`",
            grid(0, 72, 12, 8),
            targets(
                (
                    "{{deployment}}",
                    f"max by (deployment) (resets({sel(GENERATION_TOKENS.new)}[15m]))",
                )
            ),
            unit="short",
            steps=((None, "green"), (3, "red")),
            threshold_style="dashed",
        ),
        state_timeline(
            62,
            "Scrape status",
            "Whether each deployment's metrics could be scraped, over time. Gaps in the other "
            "panels line up with **DOWN** periods here.\n\n**When it is bad:** see the *Monitoring "
            "health* dashboard for the proxy's failure kinds; *AquaDeploymentDown* fires after 2 "
            "minutes down.\n\nMetric: `up`",
            grid(12, 72, 12, 8),
            [target(f"max by (deployment) ({sel('up', model=False)})", "{{deployment}}")],
        ),
    ]

    spec_decode = row(
        70,
        "Speculative decoding (only when enabled)",
        80,
        [
            timeseries(
                71,
                "Draft acceptance rate",
                "Share of the draft model's proposed tokens the target model accepted.\n\n"
                "**When it is bad:** a low rate means speculation costs more than it saves; try "
                "fewer speculative tokens or a draft model closer to the target.\n\n"
                "Metrics: `vllm:spec_decode_num_{accepted,draft}_tokens_total`",
                grid(0, 81, 8, 8),
                targets(
                    (
                        "{{deployment}}",
                        ratio(counter_rate(SPEC_ACCEPTED), counter_rate(SPEC_DRAFT_TOKENS)),
                    )
                ),
                unit="percentunit",
                maximum=1,
            ),
            timeseries(
                72,
                "Mean acceptance length",
                "Tokens produced per verification step: one from the target model plus the "
                "accepted draft tokens. 1 means speculation gives nothing.\n\n**When it is bad:** "
                "close to 1 means speculative decoding only adds overhead for this traffic.\n\n"
                "Metrics: `vllm:spec_decode_num_accepted_tokens_total`, "
                "`vllm:spec_decode_num_drafts_total`",
                grid(8, 81, 8, 8),
                targets(
                    (
                        "{{deployment}}",
                        f"1 + {ratio(counter_rate(SPEC_ACCEPTED), counter_rate(SPEC_DRAFTS))}",
                    )
                ),
                unit="short",
                minimum=1,
            ),
            timeseries(
                73,
                "Accepted tokens / s by draft position",
                "Accepted draft tokens per second at each position of the draft. Acceptance "
                "normally falls with the position.\n\n**When it is bad:** if late positions are "
                "almost never accepted, reduce the number of speculative tokens.\n\n"
                "Metric: `vllm:spec_decode_num_accepted_tokens_per_pos_total`",
                grid(16, 81, 8, 8),
                targets(
                    (
                        "{{deployment}} position {{position}}",
                        counter_rate(SPEC_PER_POS, ("deployment", "position")),
                    )
                ),
                unit="count:tok/s",
            ),
        ],
    )
    lora = row(
        80,
        "LoRA adapters (only when enabled)",
        81,
        [
            table(
                81,
                "LoRA adapters (latest)",
                "The adapters each deployment is running and has waiting, and its adapter budget "
                "(`max_lora`), from the most recent report.\n\n**When it is bad:** adapters that "
                "keep waiting while others run mean the budget is too small: raise `--max-loras`."
                "\n\nMetric: `vllm:lora_requests_info` (it has no model label)",
                grid(0, 82, 24, 7),
                [
                    target(
                        "1000 * topk by (deployment) (1, "
                        f"{sel('vllm:lora_requests_info', model=False)})",
                        instant=True,
                        fmt="table",
                    )
                ],
                unit="dateTimeFromNow",
                rename={
                    "deployment": "Deployment",
                    "running_lora_adapters": "Running adapters",
                    "waiting_lora_adapters": "Waiting adapters",
                    "max_lora": "Max adapters",
                    "Value": "Reported",
                },
                exclude=(
                    "Time",
                    "__name__",
                    "job",
                    "instance",
                    "deployment_ocid",
                    "region",
                    "demo",
                ),
                no_value="No LoRA adapters reported",
            )
        ],
    )

    panels = [banner, *tiles_1, *tiles_2, *latency, *throughput, *scheduler, *shapes, *quality]
    panels += [spec_decode, lora]
    return dashboard(
        "aqua-vllm",
        "vLLM deployment",
        "Traffic, latency, saturation and data quality of vLLM model deployments on OCI Data "
        "Science AI Quick Actions, scraped through the aqua-metrics signing proxy. Works with "
        "current and older vLLM metric names.",
        panels,
        [DATASOURCE_VARIABLE, DEPLOYMENT_VARIABLE, MODEL_VARIABLE],
        ("aqua", "vllm"),
    )


# --------------------------------------------------------------------------------------------
# Dashboard: Monitoring health
# --------------------------------------------------------------------------------------------

STACK_JOBS = 'job=~"aqua-proxy|prometheus|grafana"'


def proxy_sel(metric: str, extra: str = "") -> str:
    return f'{metric}{{job="aqua-proxy", deployment=~"$deployment"{", " + extra if extra else ""}}}'


def health_dashboard() -> Json:
    overview = [
        stat(
            1,
            "Deployments up",
            "Deployments whose metrics Prometheus scraped successfully at the last attempt.",
            grid(0, 0, 4, 4),
            [target(f"count({sel('up', model=False)} == 1) or vector(0)")],
            unit="none",
            steps=((None, "blue"),),
            no_value="0",
        ),
        stat(
            2,
            "Deployments down",
            "Deployments Prometheus could not scrape at the last attempt. See *Scrape failures by "
            "kind* for the reason; *AquaDeploymentDown* fires after 2 minutes.",
            grid(4, 0, 4, 4),
            [target(f"count({sel('up', model=False)} == 0) or vector(0)")],
            unit="none",
            steps=((None, "green"), (1, "red")),
            no_value="0",
        ),
        stat(
            3,
            "Firing alerts",
            "Alert rules of aqua-metrics firing now (evaluated by Prometheus). The *Alerts* row "
            "lists them.",
            grid(8, 0, 4, 4),
            [target('count(ALERTS{alertstate="firing"}) or vector(0)')],
            unit="none",
            steps=((None, "green"), (1, "red")),
            no_value="0",
        ),
        stat(
            4,
            "Stack components down",
            "Components of this container (signing proxy, Prometheus, Grafana) whose own metrics "
            "Prometheus cannot scrape. A down proxy stops all deployment scrapes; check the "
            "container's logs.",
            grid(12, 0, 4, 4),
            [target(f"count(up{{{STACK_JOBS}}} == 0) or vector(0)")],
            unit="none",
            steps=((None, "green"), (1, "red")),
            no_value="0",
        ),
        stat(
            5,
            "Scrape failures (time range)",
            "Scrapes of the selected deployments the proxy could not answer with metrics, in the "
            "selected time range. The panels below break them down by kind.",
            grid(16, 0, 4, 4),
            [
                target(
                    f"sum(increase({proxy_sel('aqua_proxy_scrape_failures_total')}[$__range])) "
                    "or vector(0)",
                    instant=True,
                )
            ],
            unit="none",
            steps=((None, "green"), (1, "orange")),
            graph=False,
            no_value="0",
            decimals=0,
        ),
        stat(
            6,
            "Rule evaluation failures (time range)",
            "Failed evaluations of Prometheus alert rules in the selected time range. Failing "
            "rules cannot alert: look at Prometheus' log for the rule and the error.",
            grid(20, 0, 4, 4),
            [
                target(
                    'sum(increase(prometheus_rule_evaluation_failures_total{job="prometheus"}'
                    "[$__range])) or vector(0)",
                    instant=True,
                )
            ],
            unit="none",
            steps=((None, "green"), (1, "red")),
            graph=False,
            no_value="0",
            decimals=0,
        ),
    ]

    deployments = [
        row(10, "Deployment scrapes", 4),
        state_timeline(
            11,
            "Deployment scrape status",
            "Whether each deployment could be scraped through the proxy, over time.\n\n**When it "
            "is bad:** a deployment that is DOWN has no fresh metrics; the failure-kind panels "
            "below say why.\n\nMetric: `up`",
            grid(0, 5, 12, 8),
            [target(f"max by (deployment) ({sel('up', model=False)})", "{{deployment}}")],
        ),
        table(
            12,
            "Scrape targets",
            "Every target Prometheus scrapes, with its labels and whether the last scrape "
            "succeeded: the selected deployments (through the proxy) and this container's own "
            "components.\n\n**When it is bad:** a DOWN deployment points at the proxy's failure "
            "kinds; a DOWN component at the container's logs.\n\nMetric: `up`",
            grid(12, 5, 12, 8),
            [
                target(
                    f"{sel('up', model=False)} or up{{{STACK_JOBS}}}",
                    instant=True,
                    fmt="table",
                )
            ],
            unit="none",
            exclude=("Time", "__name__"),
            rename={"Value": "State"},
            mappings=UP_MAPPINGS,
        ),
        timeseries(
            13,
            "Scrape duration",
            "How long Prometheus' scrape of each deployment took, and the proxy's 95th percentile "
            "time to answer it (signing plus the upstream fetch through the OCI gateway).\n\n"
            "**When it is bad:** durations near the scrape timeout end in failed scrapes; the "
            "gateway or the deployment is slow, so raise SCRAPE_TIMEOUT or the scrape interval."
            "\n\nMetrics: `scrape_duration_seconds`, `aqua_proxy_scrape_duration_seconds`",
            grid(0, 13, 8, 8),
            targets(
                (
                    "{{deployment}} (Prometheus)",
                    f"max by (deployment) ({sel('scrape_duration_seconds', model=False)})",
                ),
                (
                    "{{deployment}} (proxy p95)",
                    "histogram_quantile(0.95, sum by (deployment, le) "
                    f"(rate({proxy_sel('aqua_proxy_scrape_duration_seconds_bucket')}[{RATE}])))",
                ),
            ),
            unit="s",
        ),
        timeseries(
            14,
            "Samples per scrape",
            "Samples Prometheus took from each deployment's scrape.\n\n**When it is bad:** a drop "
            "to a handful means the deployment answered something other than vLLM metrics; a "
            "steady climb means growing label cardinality.\n\nMetric: `scrape_samples_scraped`",
            grid(8, 13, 8, 8),
            targets(
                (
                    "{{deployment}}",
                    f"max by (deployment) ({sel('scrape_samples_scraped', model=False)})",
                )
            ),
            unit="short",
        ),
        timeseries(
            15,
            "Proxy requests in flight",
            "Upstream requests the proxy is waiting on, per deployment.\n\n**When it is bad:** "
            "more than one for long means scrapes pile up behind a slow upstream; the proxy then "
            "refuses new ones (failure kind *busy*).\n\nMetric: `aqua_proxy_inflight_requests`",
            grid(16, 13, 8, 8),
            targets(
                (
                    "{{deployment}}",
                    zero_if_absent(
                        f"sum by (deployment) ({proxy_sel('aqua_proxy_inflight_requests')})",
                        "deployment",
                    ),
                )
            ),
            unit="short",
        ),
    ]

    proxy = [
        row(20, "Proxy", 21),
        timeseries(
            21,
            "Upstream responses by status code",
            "Responses the proxy received from each deployment, by HTTP status.\n\n**When it is "
            "bad:** 404 from the OCI gateway means NotAuthorizedOrNotFound (wrong OCID or missing "
            "policy); 401 a refused signature; 429 the tenancy's predict rate limit; 5xx a "
            "failing deployment.\n\nMetric: `aqua_proxy_upstream_responses_total`",
            grid(0, 22, 8, 8),
            targets(
                (
                    "{{deployment}} {{code}}",
                    zero_if_absent(
                        "sum by (deployment, code) (rate("
                        f"{proxy_sel('aqua_proxy_upstream_responses_total')}[{RATE}]))",
                        "code",
                    ),
                )
            ),
            unit="reqps",
        ),
        timeseries(
            22,
            "Scrape failures by kind",
            "Scrapes the proxy answered without metrics, per minute, by cause: *timeout*, "
            "*connect* (network or DNS), *signature_refused* (the gateway rejected the signed "
            "request), *oversized* (response too large), *upstream_status* (non-200 from the "
            "deployment), *protocol* (not a metrics page), *busy* (too many scrapes in flight). "
            "A `none` line at zero means the proxy is up and nothing failed.\n\n**When it is "
            "bad:** *signature_refused* raises *AquaProxySignatureRefused*: check the dynamic "
            "group and the policy granting DATA_SCIENCE_MODEL_DEPLOYMENT_PREDICT.\n\n"
            "Metric: `aqua_proxy_scrape_failures_total`",
            grid(8, 22, 8, 8),
            targets(
                (
                    "{{deployment}} {{kind}}",
                    zero_if_absent(
                        "60 * sum by (deployment, kind) (rate("
                        f"{proxy_sel('aqua_proxy_scrape_failures_total')}[{RATE}]))",
                        "kind",
                    ),
                )
            ),
            unit="opm",
            bars=True,
        ),
        timeseries(
            23,
            "Signer credential refreshes",
            "Renewals of the OCI credentials the proxy signs with, per minute, by auth mode, and "
            "failed renewal attempts. A `none` line at zero means nothing was renewed in the "
            "window (API keys never need it).\n\n**When it is bad:** repeated failures end in "
            "expired tokens and refused signatures: check the instance or resource principal "
            "setup, or run `oci session refresh` for session tokens.\n\n"
            "Metrics: `aqua_proxy_signer_refreshes_total`, `aqua_proxy_signer_refresh_failures_total`",
            grid(16, 22, 8, 8),
            targets(
                (
                    "{{mode}} refreshed",
                    zero_if_absent(
                        "60 * sum by (mode) (rate("
                        f'aqua_proxy_signer_refreshes_total{{job="aqua-proxy"}}[{RATE}]))',
                        "mode",
                    ),
                ),
                (
                    "{{mode}} failed",
                    "60 * sum by (mode) (rate("
                    f'aqua_proxy_signer_refresh_failures_total{{job="aqua-proxy"}}[{RATE}]))',
                ),
            ),
            unit="opm",
            bars=True,
        ),
    ]

    prometheus = [
        row(30, "Prometheus", 30),
        timeseries(
            31,
            "Samples ingested / s",
            "Samples Prometheus appends to its database per second, all jobs together.\n\n**When "
            "it is bad:** a sudden rise means new or exploding series (more deployments, label "
            "churn); memory and disk use follow it.\n\n"
            "Metric: `prometheus_tsdb_head_samples_appended_total`",
            grid(0, 31, 8, 8),
            targets(
                (
                    "samples",
                    'sum(rate(prometheus_tsdb_head_samples_appended_total{job="prometheus"}'
                    f"[{RATE}]))",
                )
            ),
            unit="short",
        ),
        timeseries(
            32,
            "Head series",
            "Series held in memory by Prometheus (the head block).\n\n**When it is bad:** steady "
            "growth without new deployments means label churn; Prometheus' memory grows with "
            "it.\n\nMetric: `prometheus_tsdb_head_series`",
            grid(8, 31, 8, 8),
            targets(("series", 'max(prometheus_tsdb_head_series{job="prometheus"})')),
            unit="short",
        ),
        timeseries(
            33,
            "TSDB disk usage",
            "Bytes on disk of persisted blocks and of the write-ahead log.\n\n**When it is bad:** "
            "growth towards the volume's size: lower the retention time or size.\n\n"
            "Metrics: `prometheus_tsdb_storage_blocks_bytes`, `prometheus_tsdb_wal_storage_size_bytes`",
            grid(16, 31, 8, 8),
            targets(
                ("blocks", 'max(prometheus_tsdb_storage_blocks_bytes{job="prometheus"})'),
                ("WAL", 'max(prometheus_tsdb_wal_storage_size_bytes{job="prometheus"})'),
            ),
            unit="bytes",
            stack=True,
            fill=30,
        ),
        timeseries(
            34,
            "Rule evaluation failures and missed iterations",
            "Failed rule evaluations and skipped evaluation cycles, per minute, by rule group.\n\n"
            "**When it is bad:** failing or skipped rules cannot alert; Prometheus' log names the "
            "rule and the error.\n\nMetrics: `prometheus_rule_evaluation_failures_total`, "
            "`prometheus_rule_group_iterations_missed_total`",
            grid(0, 39, 8, 8),
            targets(
                (
                    "{{rule_group}} failed",
                    "60 * sum by (rule_group) (rate("
                    f'prometheus_rule_evaluation_failures_total{{job="prometheus"}}[{RATE}]))',
                ),
                (
                    "{{rule_group}} missed",
                    "60 * sum by (rule_group) (rate("
                    f'prometheus_rule_group_iterations_missed_total{{job="prometheus"}}[{RATE}]))',
                ),
            ),
            unit="opm",
        ),
        timeseries(
            35,
            "Rule group evaluation duration",
            "How long the last evaluation of each rule group took.\n\n**When it is bad:** a "
            "duration close to the evaluation interval makes Prometheus skip cycles.\n\n"
            "Metric: `prometheus_rule_group_last_duration_seconds`",
            grid(8, 39, 8, 8),
            targets(
                (
                    "{{rule_group}}",
                    "max by (rule_group) "
                    '(prometheus_rule_group_last_duration_seconds{job="prometheus"})',
                )
            ),
            unit="s",
        ),
        timeseries(
            36,
            "Target discovery and sync",
            "Targets per scrape job (deployments come from the proxy's service discovery), "
            "failed service-discovery requests per minute, and the 90th percentile time to sync a "
            "job's targets (right axis).\n\n**When it is bad:** SD failures mean Prometheus cannot "
            "reach the proxy's /sd endpoint and keeps its last known targets.\n\n"
            "Metrics: `prometheus_target_scrape_pool_targets`, `prometheus_sd_http_failures_total`, "
            "`prometheus_target_sync_length_seconds`",
            grid(16, 39, 8, 8),
            targets(
                (
                    "{{scrape_job}} targets",
                    'sum by (scrape_job) (prometheus_target_scrape_pool_targets{job="prometheus"})',
                ),
                (
                    "SD failures / min",
                    f'60 * sum(rate(prometheus_sd_http_failures_total{{job="prometheus"}}[{RATE}]))',
                ),
                (
                    "{{scrape_job}} sync p90",
                    "max by (scrape_job) (prometheus_target_sync_length_seconds"
                    '{job="prometheus", quantile="0.9"})',
                ),
            ),
            unit="short",
        ),
    ]
    # Sync durations are seconds: give them their own unit on a right axis.
    prometheus[-1]["fieldConfig"]["overrides"] = [
        {
            "matcher": {"id": "byRegexp", "options": ".* sync p90"},
            "properties": [
                {"id": "unit", "value": "s"},
                {"id": "custom.axisPlacement", "value": "right"},
            ],
        }
    ]

    alerts = [
        row(40, "Alerts", 47),
        {
            "id": 41,
            "type": "alertlist",
            "title": "Alert rules (Prometheus)",
            "description": "Firing and pending alerts of the rules Prometheus evaluates "
            "(rules/aqua-metrics.rules.yml), shown through the Prometheus data source. Each "
            "alert's description says what to do.",
            "gridPos": grid(0, 48, 12, 10),
            "options": {
                "alertInstanceLabelFilter": "",
                "alertName": "",
                "dashboardAlerts": False,
                "datasource": DATASOURCE_NAME,
                "groupBy": [],
                "groupMode": "default",
                "maxItems": 50,
                "showInactiveAlerts": False,
                "showInstances": True,
                "sortOrder": 3,
                "stateFilter": {
                    "error": True,
                    "firing": True,
                    "noData": False,
                    "normal": False,
                    "pending": True,
                    "recovering": True,
                },
                "viewMode": "list",
            },
        },
        table(
            42,
            "Firing alert instances",
            "Every firing alert with its labels (the `ALERTS` series Prometheus writes), one row "
            "per alert instance. Empty is good.\n\n**When it is bad:** the *Alert rules* panel "
            "shows each alert's description and what to do.\n\nMetric: `ALERTS`",
            grid(12, 48, 12, 10),
            [target('ALERTS{alertstate="firing"}', instant=True, fmt="table")],
            unit="none",
            exclude=("Time", "__name__", "Value", "alertstate"),
            no_value="No alerts firing",
        ),
    ]

    processes = [
        row(50, "Processes", 58),
        timeseries(
            51,
            "Memory (RSS)",
            "Resident memory of the proxy, Prometheus and Grafana.\n\n**When it is bad:** the "
            "three share the container's memory limit; Prometheus grows with the number of "
            "series, the proxy should stay flat (growth means a leak).\n\n"
            "Metric: `process_resident_memory_bytes`",
            grid(0, 59, 8, 8),
            targets(("{{job}}", f"max by (job) (process_resident_memory_bytes{{{STACK_JOBS}}})")),
            unit="bytes",
        ),
        timeseries(
            52,
            "CPU",
            "CPU used by the proxy, Prometheus and Grafana; 100% is one full core.\n\n**When it "
            "is bad:** a proxy busy all the time slows scrapes (many deployments, large metric "
            "pages); give the container more CPU.\n\nMetric: `process_cpu_seconds_total`",
            grid(8, 59, 8, 8),
            targets(
                (
                    "{{job}}",
                    f"sum by (job) (rate(process_cpu_seconds_total{{{STACK_JOBS}}}[{RATE}]))",
                )
            ),
            unit="percentunit",
        ),
        timeseries(
            53,
            "Open file descriptors",
            "Open files and sockets of the proxy, Prometheus and Grafana.\n\n**When it is bad:** "
            "a count that only grows means leaked connections; near the limit "
            "(`process_max_fds`) new scrapes fail.\n\nMetric: `process_open_fds`",
            grid(16, 59, 8, 8),
            targets(("{{job}}", f"max by (job) (process_open_fds{{{STACK_JOBS}}})")),
            unit="short",
        ),
    ]

    panels = [*overview, *deployments, *proxy, *prometheus, *alerts, *processes]
    return dashboard(
        "aqua-health",
        "Monitoring health",
        "Is the monitoring itself working: scrapes of each deployment through the signing proxy, "
        "the proxy's failures and credential refreshes, Prometheus ingestion and rule evaluation, "
        "firing alerts and the container's processes.",
        panels,
        [DATASOURCE_VARIABLE, DEPLOYMENT_VARIABLE],
        ("aqua", "monitoring"),
    )


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------

DASHBOARDS = {
    "vllm-deployment.json": vllm_dashboard,
    "monitoring-health.json": health_dashboard,
}


def render() -> dict[Path, str]:
    """The JSON text of every dashboard, by the file Grafana reads it from."""
    return {
        DASHBOARD_DIR / name: json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
        for name, build in DASHBOARDS.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a JSON file is stale")
    args = parser.parse_args(argv)
    stale = []
    for path, text in render().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'}: {path.relative_to(HERE.parent)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
