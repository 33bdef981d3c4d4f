"""The "AQUA fleet" dashboard on the real stack serving the demo fleet, through one outage.

One stack (`aqua-metrics start`, real Prometheus, 2 s scrapes) with the default demo fleet of three
and `DEMO_OUTAGE_AFTER=70s`, so the flaky member ("Demo batch jobs") goes down 70 s after the
proxy starts and stays down for 4 minutes (`app.demo.fleet.OUTAGE_LENGTH_S`), longer than
AquaDeploymentDown's `for: 2m`. The tests run in file order against the same stack:

1. at a moment `healthy_at` when every member has been scraped for a while and none is down yet,
   every query of the fleet dashboard, substituted as Grafana would, returns data, and every
   column of the deployments table has a value for every deployment row (checked per deployment);
   each row's link opens "vLLM deployment" with that row's deployment, a value its variable offers
   (under the deployment's display name);
   the member with 2 replicas ("Demo chat") is served as two `replica`s whose counters never
   reset, and its requests/s in the table is the sum of its replicas' rates;
2. then, within the outage, the flaky member's row shows up = 0, the fleet counts it down, lists
   it as not scraped with the proxy's failure kind, and AquaDeploymentDown fires in Prometheus
   (awaited once, by polling /api/v1/alerts with a deadline).
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

import pytest

from app.demo.fleet import demo_fleet
from testkit.stack import Stack
from tests.support.dashboards import (
    OCI_MONITORING_TARGETS,
    TargetKey,
    check_targets,
    load_dashboards,
    panel_queries,
    resolve_data_link,
    table_rows,
    variable_options,
    variables_of,
    without_zero_fallbacks,
)

pytestmark = pytest.mark.stack

OUTAGE_AFTER_S = 70
SETTINGS = {
    "SCRAPE_INTERVAL": "2s",
    "SCRAPE_TIMEOUT": "1s",
    "DEMO_OUTAGE_AFTER": f"{OUTAGE_AFTER_S}s",
}
MEMBERS = {member.name: member for member in demo_fleet(3)}
FLAKY = next(name for name, member in MEMBERS.items() if member.flaky)
REPLICATED = next(name for name, member in MEMBERS.items() if member.replicas > 1)
RATE_INTERVAL = "1m"  # Grafana's $__rate_interval for a 2 s scrape interval is at least 4 x 2 s.
TABLE_ID, DOWN_TILE, FIRING_TILE, NOT_SCRAPED = 6, 2, 5, 9
# Before the outage nothing is down or failing and no alert has fired yet (every rule has a for:).
HEALTHY_ABSENT: dict[TargetKey, str] = {
    TargetKey("aqua-fleet", DOWN_TILE, "A"): "no demo deployment is down before the outage",
    TargetKey("aqua-fleet", FIRING_TILE, "A"): "no alert has fired before the outage",
    TargetKey("aqua-fleet", TABLE_ID, "J"): "no alert has fired before the outage",
    TargetKey("aqua-fleet", NOT_SCRAPED, "A"): "every demo deployment is ACTIVE and scraped",
}
# Rare 5xx answers of the simulation: the ratio's zero fill gives every row a value regardless.
MAY_BE_EMPTY: dict[TargetKey, str] = {
    TargetKey("aqua-fleet", TABLE_ID, "F"): "5xx responses are rare in the demo",
}


def prometheus_get(stack: Stack, path: str, **params: str) -> dict:
    url = f"{stack.prometheus_url}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=15) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


def instant(stack: Stack, expr: str, at: float) -> list[dict]:
    return prometheus_get(stack, "/api/v1/query", query=expr, time=f"{at:.3f}")["result"]


def fleet_queries():
    return [
        q
        for q in panel_queries(load_dashboards()["aqua-fleet"], {}, RATE_INTERVAL, "2s")
        if q.kind == "panel"
    ]


def table_at(stack: Stack, at: float) -> dict[str, dict]:
    panel = next(p for p in load_dashboards()["aqua-fleet"]["panels"] if p["id"] == TABLE_ID)
    results = {
        q.ref_id: instant(stack, q.expr, at) for q in fleet_queries() if q.panel_id == TABLE_ID
    }
    return table_rows(panel, results)


@pytest.fixture(scope="module")
def fleet_stack():
    stack = Stack.create(**SETTINGS)
    stack.started_at = time.time()
    stack.start()
    started = time.monotonic()
    # Enough scrapes of every member for rates and quantiles over 1 minute, none failed so far.
    stack.wait_for(
        'count((count_over_time(up{job="vllm", demo="true"}[1m]) >= 15) '
        'and (min_over_time(up{job="vllm", demo="true"}[1m]) == 1))',
        timeout=OUTAGE_AFTER_S,
        predicate=lambda result: result and float(result[0]["value"][1]) == 3,
    )
    stack.healthy_at = time.time()
    assert time.monotonic() - started < OUTAGE_AFTER_S, (
        "too slow to see the fleet before the outage"
    )
    yield stack
    stack.cleanup()


def test_every_fleet_query_has_data_before_the_outage(fleet_stack):
    at = fleet_stack.healthy_at
    missing, out_of_date = check_targets(
        fleet_queries(),
        lambda expr, _instant: bool(instant(fleet_stack, expr, at)),
        HEALTHY_ABSENT | OCI_MONITORING_TARGETS,
        MAY_BE_EMPTY,
    )
    assert (missing, out_of_date) == ([], [])


def test_every_row_has_every_column(fleet_stack):
    rows = table_at(fleet_stack, fleet_stack.healthy_at)
    assert sorted(rows) == sorted(MEMBERS)
    columns = {f"Value #{ref}" for ref in "ABCDEFGHIJ"}
    for name, row in rows.items():
        assert columns <= set(row), (name, columns - set(row))
        member = MEMBERS[name]
        assert (row["name"], row["aqua_model"], row["region"]) == (
            member.display_name,
            member.aqua_model,
            member.region,
        )
        assert (row["inference_container"], row["lifecycle_state"], row["Value #B"]) == (
            "vllm",
            "ACTIVE",
            1,
        )


def test_every_zero_filled_column_has_real_data_for_some_row(fleet_stack):
    # The per-row check above runs the columns with their zero fills; the stripped queries must
    # still find real samples (for at least one deployment), or a zero fill hides an empty panel.
    at = fleet_stack.healthy_at
    for query in fleet_queries():
        absent = HEALTHY_ABSENT | MAY_BE_EMPTY | OCI_MONITORING_TARGETS
        if query.panel_id == TABLE_ID and query.key not in absent:
            assert instant(fleet_stack, without_zero_fallbacks(query.expr), at), query.ref_id


def test_each_row_links_to_its_vllm_deployment(fleet_stack):
    dashboards = load_dashboards()
    panel = next(p for p in dashboards["aqua-fleet"]["panels"] if p["id"] == TABLE_ID)
    (link,) = [
        prop["value"][0]["url"]
        for override in panel["fieldConfig"]["overrides"]
        if override["matcher"]["options"] == "Deployment"
        for prop in override["properties"]
        if prop["id"] == "links"
    ]
    vllm = dashboards["aqua-vllm"]
    (variable,) = [q for q in panel_queries(vllm, {}) if q.ref_id == "deployment"]
    at = fleet_stack.healthy_at
    options = variable_options(
        variables_of(vllm)["deployment"], instant(fleet_stack, variable.expr, at)
    )
    # The variable lists display names, each selecting its deployment's label value.
    assert options == sorted((m.display_name, name) for name, m in MEMBERS.items())
    offered = {value for _, value in options}
    for name, row in table_at(fleet_stack, at).items():
        url = urllib.parse.urlsplit(resolve_data_link(link, row, "now-1h", "now"))
        assert url.path.split("/")[:3] == ["", "d", vllm["uid"]]
        query = urllib.parse.parse_qs(url.query)
        assert query == {"var-deployment": [name], "from": ["now-1h"], "to": ["now"]}
        assert name in offered


def test_the_two_replica_member_is_served_per_replica_without_resets(fleet_stack):
    at = time.time()
    run = f"{int(at - fleet_stack.started_at) + 5}s"  # the whole run so far
    chat = f'job="vllm", deployment="{REPLICATED}"'
    starts = instant(fleet_stack, f"process_start_time_seconds{{{chat}}}", at)
    replicas = {r["metric"]["replica"] for r in starts}
    assert len(replicas) == MEMBERS[REPLICATED].replicas == 2, starts
    assert len({r["value"][1] for r in starts}) == 2, "each replica its own start time"
    running = instant(fleet_stack, f"vllm:num_requests_running{{{chat}}}", at)
    assert {r["metric"]["replica"] for r in running} == replicas
    # A single-replica member is relayed as fetched: no replica label.
    assert instant(fleet_stack, f'up{{job="vllm", deployment!="{REPLICATED}"}}', at)
    assert not instant(
        fleet_stack, f'vllm:num_requests_running{{deployment!="{REPLICATED}", replica!=""}}', at
    )
    # No counter of either replica ever went backwards over the whole run.
    for counter in (
        "vllm:request_success_total",
        "vllm:generation_tokens_total",
        "vllm:prompt_tokens_total",
        "vllm:e2e_request_latency_seconds_bucket",
        "vllm:time_to_first_token_seconds_count",
        "http_requests_total",
    ):
        selector = f"{counter}{{{chat}}}"
        (checked,) = instant(fleet_stack, f"count(count by (replica) ({selector}))", at)
        assert float(checked["value"][1]) == 2, counter
        (resets,) = instant(fleet_stack, f"sum(resets({selector}[{run}]))", at)
        assert float(resets["value"][1]) == 0, counter
    # The table's requests/s is the sum over the replicas, each of which carries traffic.
    per_replica = instant(
        fleet_stack,
        f"sum by (replica) (rate(vllm:request_success_total{{{chat}}}[{RATE_INTERVAL}]))",
        at,
    )
    assert {r["metric"]["replica"] for r in per_replica} == replicas
    rates = [float(r["value"][1]) for r in per_replica]
    assert all(rate > 0 for rate in rates), rates
    assert table_at(fleet_stack, at)[REPLICATED]["Value #C"] == pytest.approx(sum(rates))


def test_the_flaky_deployment_shows_down_and_fires_its_alert(fleet_stack):
    def firing() -> list[dict]:
        alerts = prometheus_get(fleet_stack, "/api/v1/alerts")["alerts"]
        return [
            a
            for a in alerts
            if a["labels"].get("alertname") == "AquaDeploymentDown" and a["state"] == "firing"
        ]

    # The outage starts OUTAGE_AFTER_S after the proxy started; the rule fires 2 minutes into it
    # (plus one evaluation); the outage lasts 4 minutes.
    deadline = time.monotonic() + OUTAGE_AFTER_S + 120 + 60
    while not (alerts := firing()) and time.monotonic() < deadline:
        time.sleep(2)
    assert [a["labels"]["deployment"] for a in alerts] == [FLAKY], alerts
    at = time.time()
    rows = table_at(fleet_stack, at)
    assert rows[FLAKY]["Value #B"] == 0, "the table shows it DOWN"
    assert rows[FLAKY]["Value #J"] >= 1, "with its firing alert"
    assert all(rows[name]["Value #B"] == 1 for name in MEMBERS if name != FLAKY)
    queries = {(q.panel_id, q.ref_id): q.expr for q in fleet_queries()}
    (down,) = instant(fleet_stack, queries[(DOWN_TILE, "A")], at)
    assert float(down["value"][1]) == 1
    not_scraped = instant(fleet_stack, queries[(NOT_SCRAPED, "A")], at)
    assert [(r["metric"]["deployment"], r["metric"]["reason"]) for r in not_scraped] == [
        (FLAKY, "scrapes failing: upstream_status")
    ]
