"""The "AQUA fleet" dashboard (home): which deployment is in trouble, at a glance.

One table row per deployment, built from instant queries in table format (one per column, each
per deployment) that Grafana's `merge` transformation joins on the fields every frame shares
(`Time` and `deployment`; `display_name`, which only some frames carry, agrees between them);
`organize` then orders, hides and renames the columns. Each row links to
"vLLM deployment" with that deployment selected and the time range kept. Every vLLM expression is
the one "vLLM deployment" shows (same helpers, same legacy fallbacks), re-scoped from
`$deployment`/`$model_name` to the fleet's filters `$aqua_model` and `$region`. The GPU and
gateway columns read the OCI Monitoring gauges of the "Infrastructure (OCI Monitoring)" row; those
carry no `aqua_model`/`region`, so the filters reach them through the deployment's `up`.
"""

from __future__ import annotations

from grafana.generator.dashboard import DATASOURCE_VARIABLE, dashboard, query_variable
from grafana.generator.layout import Layout
from grafana.generator.metrics import (
    E2E,
    GENERATION_TOKENS,
    HTTP_5XX_RATIO,
    KV_USAGE,
    REQUEST_RATE,
    TTFT,
    WAITING,
)
from grafana.generator.panels import UP_MAPPINGS, Json, stat, table, target, thresholds
from grafana.generator.promql import (
    TARGET_MATCHERS,
    VLLM_MATCHERS,
    counter_rate,
    gauge,
    quantile,
    ratio,
)
from grafana.generator.vllm_infrastructure import PREFIX as OCI_PREFIX

UID = "aqua-fleet"
VLLM_DASHBOARD_UID = "aqua-vllm"
FILTERS = 'aqua_model=~"$aqua_model", region=~"$region"'
FLEET_MATCHERS = f'job="vllm", {FILTERS}'
# Grafana data link variables: the row's `deployment` field and the dashboard's time range.
DEPLOYMENT_LINK = (
    f"/d/{VLLM_DASHBOARD_UID}/vllm-deployment?var-deployment=${{__data.fields.deployment}}"
    "&${__url_time_range}"
)


def for_fleet(expr: str) -> str:
    """A "vLLM deployment" expression with its deployment/model filters replaced by the fleet's."""
    return expr.replace(VLLM_MATCHERS, FLEET_MATCHERS).replace(TARGET_MATCHERS, FLEET_MATCHERS)


UP = f"max by (deployment) (up{{{FLEET_MATCHERS}}})"
# Display name when known, else the deployment name (`name`), with what the targets carry.
IDENTITY_LABELS = "deployment, display_name, aqua_model, inference_container, region, shape"
_NAMED_TARGETS = (
    f'label_replace(label_replace(up{{{FLEET_MATCHERS}}}, "name", "$1", "deployment", "(.*)"), '
    '"name", "$1", "display_name", "(.+)")'
)
_NAMED_INVENTORY = (
    f'label_replace(label_replace(aqua_deployment_info{{{FILTERS}}}, "name", "$1", "deployment", '
    '"(.*)"), "name", "$1", "display_name", "(.+)")'
)
# Inventory rows (any lifecycle state) or, for targets no discovery reported, the targets' labels.
IDENTITY = (
    f"max by ({IDENTITY_LABELS}, name, lifecycle_state) ({_NAMED_INVENTORY}) or on (deployment) "
    f'label_replace(max by ({IDENTITY_LABELS}, name) ({_NAMED_TARGETS}), "lifecycle_state", '
    '"configured", "", "")'
)
FIRING = 'ALERTS{alertstate="firing", deployment!=""}'
FIRING_BY_DEPLOYMENT = (
    f"count by (deployment) ({FIRING}) and on (deployment) {UP} or on (deployment) 0 * {UP}"
)
REQUESTS = for_fleet(REQUEST_RATE)
TOKENS = for_fleet(counter_rate(GENERATION_TOKENS))
TTFT_P95 = for_fleet(quantile(0.95, TTFT, split=True))
E2E_P95 = for_fleet(quantile(0.95, E2E, split=True))
RATIO_5XX = for_fleet(HTTP_5XX_RATIO)
KV = for_fleet(gauge(KV_USAGE, "avg"))
QUEUE = for_fleet(gauge(WAITING, "sum"))
# OCI Monitoring (app.monitoring), as in "vLLM deployment"'s infrastructure row: GPU utilization
# averaged over the deployment's instances (and GPUs), and the share of the gateway's responses
# that were 4xx/5xx, refusals that never reached vLLM included.
OCI_JOB = 'job="oci-monitoring"'
OCI_GPU = f'{{__name__=~"{OCI_PREFIX}gpu_.*utilization_ratio", __name__!~".*memory.*", {OCI_JOB}}}'
GPU_UTILIZATION = f"avg by (deployment) ({OCI_GPU}) and on (deployment) {UP}"
_GATEWAY = f"{OCI_PREFIX}predict_response_per_second{{{OCI_JOB}}}"
_GATEWAY_ERRORS = (
    f'{OCI_PREFIX}predict_response_per_second{{{OCI_JOB}, status_family=~"(?i)[45]xx"}}'
)
GATEWAY_ERROR_RATIO = (
    ratio(
        f"sum by (deployment) ({_GATEWAY_ERRORS}) or on (deployment) "
        f"0 * sum by (deployment) ({_GATEWAY})",
        f"sum by (deployment) ({_GATEWAY})",
    )
    + f" and on (deployment) {UP}"
)


# "<display name> · <AQUA model>" (just the display name when the target has no AQUA model), as
# the label `title`, one per deployment.
_JOINED = (
    f'label_join(max by (deployment, display_name, aqua_model) (up{{{FLEET_MATCHERS}}}), "title", '
    '" · ", "display_name", "aqua_model")'
)
TITLES = f'topk by (deployment) (1, label_replace({_JOINED}, "title", "$1", "title", "(.*) · "))'


def with_titles(expr: str) -> str:
    """`expr` (by deployment) gaining the label `title` (display name and AQUA model), for legends."""
    return f"({expr}) + on (deployment) group_left (title) (0 * {TITLES})"


# The table's columns: (refId, title, expression, unit, threshold steps or None).
COLUMNS: tuple[tuple[str, str, str, str, tuple[tuple[float | None, str], ...] | None], ...] = (
    ("A", "Info", IDENTITY, "none", None),
    ("B", "Up", UP, "none", ((None, "red"), (1, "green"))),
    ("C", "Requests / s", REQUESTS, "reqps", None),
    ("D", "TTFT p95", TTFT_P95, "s", ((None, "green"), (2, "orange"), (10, "red"))),
    ("E", "E2E p95", E2E_P95, "s", ((None, "green"), (15, "orange"), (30, "red"))),
    (
        "F",
        "5xx ratio",
        RATIO_5XX,
        "percentunit",
        ((None, "green"), (0.01, "orange"), (0.05, "red")),
    ),
    ("G", "KV cache", KV, "percentunit", ((None, "green"), (0.8, "orange"), (0.9, "red"))),
    ("H", "Waiting", QUEUE, "short", ((None, "green"), (10, "orange"), (50, "red"))),
    ("I", "Tokens / s", TOKENS, "short", None),
    ("K", "GPU util", GPU_UTILIZATION, "percentunit", None),
    (
        "L",
        "Gateway 4xx/5xx",
        GATEWAY_ERROR_RATIO,
        "percentunit",
        ((None, "green"), (0.01, "orange"), (0.05, "red")),
    ),
    ("J", "Firing alerts", FIRING_BY_DEPLOYMENT, "short", ((None, "green"), (1, "red"))),
)
# Label columns of the identity query, in display order, with their titles.
LABEL_COLUMNS = (
    ("name", "Deployment"),
    ("aqua_model", "AQUA model"),
    ("inference_container", "Container"),
    ("lifecycle_state", "State"),
    ("region", "Region"),
    ("shape", "Shape"),
    ("deployment", "deployment"),
)


def _override(name: str, properties: list[Json]) -> Json:
    return {"matcher": {"id": "byName", "options": name}, "properties": properties}


def deployments_table() -> Json:
    """One row per deployment; the name links to "vLLM deployment" for that row's deployment."""
    tgts = [
        target(expr, "__auto", ref, instant=True, fmt="table") for ref, _, expr, _, _ in COLUMNS
    ]
    value_names = {f"Value #{ref}": title for ref, title, _, _, _ in COLUMNS}
    panel = table(
        "Deployments",
        "One row per model deployment, by display name when discovery knows it (else the target "
        "name). *State* is the lifecycle state from discovery (`configured` for a TARGET/TARGETS "
        "deployment discovery does not report). Colours: Up red when the last scrape failed; "
        "latency, error ratio, KV cache and queue turn orange and red at the alert rules' levels. "
        "*GPU util* (mean over the instances) and *Gateway 4xx/5xx* (share of the OCI gateway's "
        "responses, refusals that never reached vLLM included) come from OCI Monitoring: empty "
        "while OCI_MONITORING is off. "
        "Click a name to open *vLLM deployment* for it, with the same time range.\n\n"
        "Metrics: `aqua_deployment_info`, `up`, the vLLM metrics of the *vLLM deployment* "
        "tiles (older vLLM names included), and the OCI Monitoring gauges of its "
        "*Infrastructure* row.",
        tgts,
        unit="none",
        exclude=("Time", "Value #A", "display_name"),
        rename={**value_names, **dict(LABEL_COLUMNS)},
    )
    order = [name for name, _ in LABEL_COLUMNS] + [f"Value #{ref}" for ref, *_ in COLUMNS[1:]]
    panel["transformations"][1]["options"]["indexByName"] = {n: i for i, n in enumerate(order)}
    overrides = [
        _override(
            "Deployment",
            [
                {
                    "id": "links",
                    "value": [
                        {
                            "title": "Open ${__data.fields.name} in vLLM deployment",
                            "url": DEPLOYMENT_LINK,
                            "targetBlank": False,
                        }
                    ],
                }
            ],
        ),
        _override("deployment", [{"id": "custom.hidden", "value": True}]),
    ]
    for _, title, _, unit, steps in COLUMNS[1:]:
        properties: list[Json] = [{"id": "unit", "value": unit}]
        if steps is not None:
            properties += [
                {"id": "thresholds", "value": thresholds(*steps)},
                {"id": "custom.cellOptions", "value": {"type": "color-background"}},
            ]
        if title == "Up":
            properties.append({"id": "mappings", "value": UP_MAPPINGS})
        overrides.append(_override(title, properties))
    panel["fieldConfig"]["overrides"] = overrides
    panel["options"]["sortBy"] = [{"displayName": "Up", "desc": False}]
    return panel


def totals(grid: Layout) -> None:
    """Fleet totals: deployments up and down, traffic, firing alerts."""
    count_up = f"count({UP} == 1) or vector(0)"
    count_down = f"count({UP} == 0) or vector(0)"
    firing = f"count({FIRING} and on (deployment) {UP}) or vector(0)"
    tiles = (
        ("Deployments up", "Deployments whose last scrape through the proxy worked.", count_up, "none",
         ((None, "blue"),)),
        ("Deployments down", "Deployments whose last scrape failed (`up` is 0): their rows show "
         "**DOWN** and *AquaDeploymentDown* fires after 2 minutes.", count_down, "none",
         ((None, "green"), (1, "red"))),
        ("Requests / s", "Requests finished per second over the whole fleet (the sum of the "
         "table's column).", f"sum({REQUESTS})", "reqps", ((None, "blue"),)),
        ("Generation tokens / s", "Output tokens generated per second over the whole fleet.",
         f"sum({TOKENS})", "short", ((None, "blue"),)),
        ("Firing alerts", "Alerts of the fleet's deployments firing now (Prometheus' `ALERTS`); "
         "*Monitoring health* lists them.", firing, "short", ((None, "green"), (1, "red"))),
    )  # fmt: skip
    for title, description, expr, unit, steps in tiles:
        grid.add(
            4,
            4,
            stat(title, description, [target(expr)], unit=unit, steps=steps, no_value="0"),
        )


def leaders(grid: Layout) -> None:
    """The slowest and the busiest deployments (top 5 by end-to-end p95 and by requests/s)."""
    grid.add(
        12,
        7,
        _ranking(
            "Slowest deployments (E2E p95)",
            "The five deployments with the highest 95th percentile end-to-end latency now, by "
            "display name and AQUA model. A deployment without finished requests in the window "
            "has no latency and is not listed.",
            f"topk(5, {E2E_P95})",
            "s",
        ),
    )
    grid.add(
        12,
        7,
        _ranking(
            "Busiest deployments (requests / s)",
            "The five deployments finishing the most requests per second now, by display name "
            "and AQUA model.",
            f"topk(5, {REQUESTS})",
            "reqps",
        ),
    )


def _ranking(title: str, description: str, expr: str, unit: str) -> Json:
    panel = stat(
        title,
        description,
        [target(with_titles(expr), "{{title}}", instant=True)],
        unit=unit,
        graph=False,
        no_value="No traffic",
    )
    panel["type"] = "bargauge"
    panel["options"] = {
        "displayMode": "basic",
        "orientation": "horizontal",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "showUnfilled": True,
        "valueMode": "color",
        "namePlacement": "left",
        "sizing": "auto",
        "minVizHeight": 16,
        "maxVizHeight": 300,
    }
    panel["fieldConfig"]["defaults"]["links"] = [
        {"title": "Open in vLLM deployment", "url": _series_link()}
    ]
    return panel


def _series_link() -> str:
    return (
        f"/d/{VLLM_DASHBOARD_UID}/vllm-deployment?var-deployment=${{__field.labels.deployment}}"
        "&${__url_time_range}"
    )


NOT_ACTIVE = (
    f'label_replace(max by (deployment, display_name, lifecycle_state) (aqua_deployment_info{{{FILTERS}, lifecycle_state!="ACTIVE"}}), '
    '"reason", "not ACTIVE: discovery does not scrape it", "", "")'
)
# The deployments down now, with their display names (the value, 0, is not shown).
DOWN_NAMES = f"topk by (deployment) (1, max by (deployment, display_name) (up{{{FLEET_MATCHERS}}}))"
SCRAPE_FAILING = (
    "label_replace(sum by (deployment, kind) (increase(aqua_proxy_scrape_failures_total[5m])) > 0, "
    '"reason", "scrapes failing: $1", "kind", "(.*)") '
    f"* on (deployment) group_left (display_name) ({DOWN_NAMES} == 0)"
)


def not_scraped() -> Json:
    """Known deployments without metrics: not ACTIVE (inventory), or failing to scrape (proxy)."""
    return table(
        "Known but not scraped",
        "Deployments the monitor knows but has no metrics from: those discovery lists in another "
        "lifecycle state than ACTIVE (creating, failed, needs attention, inactive...), and those "
        "whose scrapes fail now, with the proxy's failure kind (timeout, connect, "
        "signature_refused, upstream_status...). Empty is the good case.\n\n"
        "Metrics: `aqua_deployment_info`, `aqua_proxy_scrape_failures_total`, `up`",
        [target(f"{NOT_ACTIVE} or {SCRAPE_FAILING}", "__auto", "A", instant=True, fmt="table")],
        unit="none",
        exclude=("Time", "Value", "kind"),
        rename={
            "deployment": "Deployment",
            "display_name": "Display name",
            "lifecycle_state": "State",
            "reason": "Reason",
        },
        no_value="Every known deployment is scraped",
    )


AQUA_MODEL_VARIABLE = query_variable(
    "aqua_model",
    "AQUA model",
    'label_values(up{job="vllm"}, aqua_model)',
    "The AQUA model of the deployments (the `aqua_model` target label, from the "
    "`aqua_model_name` tag). Deployments configured by URL have none and show under All.",
)
REGION_VARIABLE = query_variable(
    "region",
    "Region",
    'label_values(up{job="vllm"}, region)',
    "The OCI region of the deployments (the `region` target label).",
)


def build() -> Json:
    grid = Layout()
    totals(grid)
    grid.add(24, 10, deployments_table())
    leaders(grid)
    grid.add(24, 6, not_scraped())
    return dashboard(
        UID,
        "AQUA fleet",
        "Every AQUA model deployment on one page: which one is down, slow, erroring, saturated "
        "or alerting, and a link to its *vLLM deployment* dashboard. Works with current and older "
        "vLLM metric names, for one deployment or fifty.",
        grid.panels,
        [DATASOURCE_VARIABLE, AQUA_MODEL_VARIABLE, REGION_VARIABLE],
        ("aqua", "fleet"),
    )
