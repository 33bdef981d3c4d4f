"""Every dashboard query, as Grafana would send it, against a real Prometheus fed by the real stack.

Two stands: (a) the built-in demo fleet (current vLLM names, `engine` label), and (b) a mixed
fleet of signature-checking stand-ins scraped through the proxy with an API key: `legacy` in an
older vLLM's format (legacy names, no `engine` label), `current` in the current one (the demo's
exposition), and `refused`, whose every scrape is refused. Every query must succeed, and every
visible target of every panel must return data on its own, with its zero fallback (`or vector(0)`
and the like) removed, except the targets listed below or in tests/support/dashboards.py, each
with its reason. A listed target that does return data fails the test as out of date. On the mixed
fleet this holds with the older deployment selected alone (so the current one cannot stand in for
a fallback) and with every deployment selected; and the fleet table has a full row for each of
`legacy` and `current`, every column backed by that deployment's own data.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping

import pytest

from app.demo.exposition import DemoDeployment
from app.demo.fleet import demo_targets
from grafana.generator.metrics import KV_USAGE
from testkit.cavage import KeyRegistry
from testkit.oci_credentials import make_api_key_profile
from testkit.stack import Stack
from tests.support.dashboards import (
    ALL,
    NEW_VLLM_ONLY_TARGETS,
    OCI_MONITORING_TARGETS,
    OPTIONAL_FEATURE_TARGETS,
    TargetKey,
    check_targets,
    iter_panels,
    load_dashboards,
    panel_queries,
    table_rows,
)
from tests.support.signed_upstream import SignedUpstream
from tests.support.vllm_payloads import LegacyVllm

pytestmark = pytest.mark.stack

FAST = {"SCRAPE_INTERVAL": "2s", "SCRAPE_TIMEOUT": "1s"}
VARIABLES = {
    "datasource": "aqua-prometheus",
    "deployment": ALL,
    "model_name": ALL,
    "aqua_model": ALL,
    "region": ALL,
}
DEMO_NAMES = [target.name for target in demo_targets()]
# Scrapes to wait for (2 s apart): enough for rate() over 1m windows and for resets().
DATA_SCRAPES = 20


def enough_data(deployment: str) -> str:
    return f'count_over_time(vllm:num_requests_running{{deployment="{deployment}"}}[5m]) >= {DATA_SCRAPES}'


def on_the_minute_grid(deployment: str) -> str:
    """Data at a whole-minute boundary: subqueries with a 1m step ("Replica starts", [30m:1m])
    evaluate only at those, so they are empty until a scrape precedes one (up to 60 s after the
    first scrape, whatever DATA_SCRAPES says)."""
    return f'count_over_time(vllm:num_requests_running{{deployment="{deployment}"}}[5m:1m]) >= 1'


def wait_for_history(stack: Stack, deployment: str) -> None:
    stack.wait_for(enough_data(deployment), timeout=120)
    stack.wait_for(on_the_minute_grid(deployment), timeout=120)


def run_query(stack: Stack, expr: str, *, instant: bool) -> dict:
    now = time.time()
    if instant:
        path = "/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": f"{now:.3f}"})
    else:
        params = {"query": expr, "start": f"{now - 120:.3f}", "end": f"{now:.3f}", "step": "5"}
        path = "/api/v1/query_range?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(stack.prometheus_url + path, timeout=15) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        return json.load(error)


# Never produced in a test run of either stand, so these targets are empty without their zero
# fallbacks (TargetKey(dashboard, panel id, refId): reason).
QUIET_STACK_TARGETS: dict[TargetKey, str] = {
    TargetKey("aqua-health", 3, "A"): "no alert fires within a run (every rule has a for:)",
    TargetKey("aqua-fleet", 5, "A"): "no alert fires within a run (every rule has a for:)",
    TargetKey("aqua-fleet", 6, "J"): "no alert fires within a run (every rule has a for:)",
    TargetKey("aqua-health", 23, "A"): "API keys and the demo never refresh credentials",
    TargetKey("aqua-health", 23, "B"): "no credential refresh fails",
}
# Filled only when a scrape times out on a loaded machine: allowed to be empty or not.
LOAD_DEPENDENT_TARGETS: dict[TargetKey, str] = {
    TargetKey("aqua-health", 4, "A"): "a stack component is down only if a scrape of it times out",
}
# The panels reading vLLM's `process_start_time_seconds` (prometheus_client's process collector,
# on every real vLLM): the demo exposes it (each replica its own), the older-vLLM fixture not.
NO_PROCESS_METRICS: dict[TargetKey, str] = {
    TargetKey("aqua-vllm", 14, "A"): "no process_start_time_seconds in the older-vLLM fixture",
    TargetKey("aqua-vllm", 61, "A"): "no process_start_time_seconds in the older-vLLM fixture",
    TargetKey("aqua-vllm", 104, "A"): "no process_start_time_seconds in the older-vLLM fixture",
}
# Always empty in the demo stand (none: the demo goes through the forwarder like any target, so
# its upstream responses and in-flight scrapes are counted too).
DEMO_STAND_TARGETS: dict[TargetKey, str] = {}
# Random in the demo stand; the older-vLLM stand shows each of them with data.
DEMO_MAY_BE_EMPTY: dict[TargetKey, str] = {
    # About 0.2% of demo requests get a 5xx at random: a run may have none.
    TargetKey("aqua-vllm", 5, "A"): "5xx responses are rare in the demo",
    TargetKey("aqua-vllm", 34, "A"): "5xx responses are rare in the demo",
    TargetKey("aqua-health", 2, "A"): "the demo is down only if a scrape times out",
    # The flaky demo deployment first goes down after DEMO_OUTAGE_AFTER (10 minutes by default;
    # tests/stack/test_fleet_dashboard.py shortens it and sees both with data).
    TargetKey("aqua-fleet", 2, "A"): "a demo deployment is down only if a scrape times out",
    TargetKey("aqua-fleet", 9, "A"): "a demo deployment fails to scrape only on a timeout",
    TargetKey("aqua-health", 5, "A"): "a demo scrape fails only if it times out",
    TargetKey("aqua-health", 22, "A"): "a demo scrape fails only if it times out",
    **LOAD_DEPENDENT_TARGETS,
}
LEGACY_STAND_TARGETS: dict[TargetKey, str] = {
    **NO_PROCESS_METRICS,
    TargetKey("aqua-vllm", 1, "A"): "no simulated deployment: the banner reads Live data",
    TargetKey("aqua-vllm", 5, "A"): "the older-vLLM fixture answers no request with a 5xx",
    TargetKey("aqua-vllm", 34, "A"): "the older-vLLM fixture answers no request with a 5xx",
}
# The mixed stand with the older deployment selected alone: the fleet dashboard has no deployment
# variable, so its targets see the current deployment too.
MIXED_FLEET_MAY_BE_EMPTY: dict[TargetKey, str] = {
    TargetKey("aqua-fleet", 6, "F"): "5xx: none from the older-vLLM fixture, rare from current",
}
# The mixed stand with every deployment selected: `current` fills what the older format lacks.
MIXED_ALL_ABSENT: dict[TargetKey, str] = {
    TargetKey("aqua-vllm", 1, "A"): "no simulated deployment: the banner reads Live data",
    TargetKey("aqua-health", 23, "A"): "API keys never refresh credentials",
    TargetKey("aqua-health", 23, "B"): "no credential refresh fails",
}
# `refused` is down from its first scrape: its AquaDeploymentDown fires after `for: 2m`, before
# or after a check depending on how long the stand took to fill (firing-alert targets not
# filtered to the selected deployments).
REFUSED_ALERT_TARGETS: dict[TargetKey, str] = {
    key: "refused's AquaDeploymentDown fires 2 minutes into the run"
    for key in (
        TargetKey("aqua-health", 3, "A"),
        TargetKey("aqua-fleet", 5, "A"),
        TargetKey("aqua-fleet", 6, "J"),
    )
}
MIXED_ALL_MAY_BE_EMPTY: dict[TargetKey, str] = {
    **LOAD_DEPENDENT_TARGETS,
    **REFUSED_ALERT_TARGETS,
    TargetKey("aqua-vllm", 5, "A"): "5xx: none from the older-vLLM fixture, rare from current",
    TargetKey("aqua-vllm", 34, "A"): "5xx: none from the older-vLLM fixture, rare from current",
    TargetKey("aqua-fleet", 6, "F"): "5xx: none from the older-vLLM fixture, rare from current",
}
MIXED_VARIABLES = {**VARIABLES, "deployment": ["legacy", "refused"]}
CURRENT_MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def query_errors_and_data(
    stack: Stack,
    allowed_absent: dict[TargetKey, str],
    may_be_empty: dict[TargetKey, str],
    variables: Mapping[str, str | list[str]] = VARIABLES,
) -> tuple[list[str], list[str], list[str]]:
    """(failed queries, targets without data, out-of-date allowances) over every dashboard."""
    errors: list[str] = []

    def has_data(expr: str, instant: bool) -> bool:
        body = run_query(stack, expr, instant=instant)
        if body.get("status") != "success":
            errors.append(f"{body.get('error')} :: {expr}")
            return False
        return bool(body["data"]["result"])

    queries = [
        query
        for dashboard in load_dashboards().values()
        for query in panel_queries(dashboard, variables, rate_interval="1m", interval="2s")
    ]
    return errors, *check_targets(queries, has_data, allowed_absent, may_be_empty)


def assert_every_target_has_data(
    stack: Stack,
    allowed_absent: dict[TargetKey, str],
    may_be_empty: dict[TargetKey, str],
    variables: Mapping[str, str | list[str]] = VARIABLES,
) -> None:
    errors, missing, out_of_date = query_errors_and_data(
        stack, allowed_absent, may_be_empty, variables
    )
    assert (errors, missing, out_of_date) == ([], [], []), json.dumps(
        {"failed": errors, "without data": missing, "allowed empty, but have data": out_of_date},
        indent=1,
    )


@pytest.fixture(scope="module")
def demo_stack():
    stack = Stack.create(**FAST).start()
    for name in DEMO_NAMES:
        wait_for_history(stack, name)
    yield stack
    stack.cleanup()


@pytest.fixture(scope="module")
def mixed_stack(tmp_path_factory):
    registry = KeyRegistry()
    creds = make_api_key_profile(tmp_path_factory.mktemp("oci"))
    creds.register_with(registry)
    legacy = LegacyVllm(seed=7)
    current = DemoDeployment(CURRENT_MODEL, seed=11)
    # `refused` knows no key: every scrape of it fails (signature refused, deployment down), so
    # the failure panels are shown with data rather than with their zero lines.
    with (
        SignedUpstream(registry, body_factory=legacy.render) as legacy_upstream,
        SignedUpstream(registry, body_factory=current.render) as current_upstream,
        SignedUpstream(KeyRegistry()) as refused,
    ):
        targets = {"legacy": legacy_upstream, "current": current_upstream, "refused": refused}
        stack = Stack.create(
            TARGETS=",".join(f"{name}={upstream.url}" for name, upstream in targets.items()),
            OCI_CONFIG_FILE=str(creds.config_path),
            **FAST,
        ).start()
        wait_for_history(stack, "legacy")
        wait_for_history(stack, "current")
        stack.upstreams = {"legacy": legacy_upstream, "current": current_upstream}
        yield stack
        stack.cleanup()


def test_every_target_has_data_on_the_demo(demo_stack):
    allowed_absent = {
        **OPTIONAL_FEATURE_TARGETS,
        **QUIET_STACK_TARGETS,
        **DEMO_STAND_TARGETS,
        **OCI_MONITORING_TARGETS,
    }
    assert_every_target_has_data(demo_stack, allowed_absent, DEMO_MAY_BE_EMPTY)


def test_every_target_has_data_on_legacy_vllm(mixed_stack):
    # The older deployment (and the refused one) selected: the current deployment's series cannot
    # stand in for a legacy fallback on "vLLM deployment".
    allowed_absent = {
        **OPTIONAL_FEATURE_TARGETS,
        **NEW_VLLM_ONLY_TARGETS,
        **QUIET_STACK_TARGETS,
        **LEGACY_STAND_TARGETS,
        **OCI_MONITORING_TARGETS,
    }
    may_be_empty = {
        **LOAD_DEPENDENT_TARGETS,
        **MIXED_FLEET_MAY_BE_EMPTY,
        **REFUSED_ALERT_TARGETS,
    }
    for key in may_be_empty:
        allowed_absent.pop(key, None)
    assert_every_target_has_data(mixed_stack, allowed_absent, may_be_empty, MIXED_VARIABLES)


def test_every_target_has_data_on_the_mixed_fleet(mixed_stack):
    # Every deployment selected: current and older vLLM names side by side in one query.
    allowed_absent = {**OPTIONAL_FEATURE_TARGETS, **OCI_MONITORING_TARGETS, **MIXED_ALL_ABSENT}
    assert_every_target_has_data(mixed_stack, allowed_absent, MIXED_ALL_MAY_BE_EMPTY)


FLEET_TABLE_ID = 6  # "Deployments"
FLEET_COLUMNS = {f"Value #{ref}" for ref in "ABCDEFGHIJ"}  # K and L: OCI Monitoring, off here
# Columns of the fleet table a row may have no real data for (its cell then shows the zero fill),
# by deployment, with why; a column listed as absent that has data fails as out of date.
ROW_ABSENT: dict[str, dict[TargetKey, str]] = {
    name: {
        key: reason
        for key, reason in {**QUIET_STACK_TARGETS, **OCI_MONITORING_TARGETS}.items()
        if key.dashboard_uid == "aqua-fleet" and key.panel_id == FLEET_TABLE_ID
    }
    | extra
    for name, extra in {
        "legacy": {
            TargetKey("aqua-fleet", 6, "F"): "the older-vLLM fixture answers no request with a 5xx"
        },
        "current": {},
    }.items()
}
ROW_MAY_BE_EMPTY: dict[str, dict[TargetKey, str]] = {
    "legacy": {},
    "current": {TargetKey("aqua-fleet", 6, "F"): "5xx responses are rare in the simulation"},
}


def fleet_table_queries():
    return [
        query
        for query in panel_queries(load_dashboards()["aqua-fleet"], {}, "1m", "2s")
        if query.kind == "panel" and query.panel_id == FLEET_TABLE_ID
    ]


def instant_at(stack: Stack, expr: str, at: float) -> list[dict]:
    path = "/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"})
    with urllib.request.urlopen(stack.prometheus_url + path, timeout=15) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_fleet_table_has_a_full_row_for_each_vllm_format(mixed_stack):
    at = time.time()
    panel = next(p for p in load_dashboards()["aqua-fleet"]["panels"] if p["id"] == FLEET_TABLE_ID)
    queries = fleet_table_queries()
    rows = table_rows(panel, {q.ref_id: instant_at(mixed_stack, q.expr, at) for q in queries})
    assert sorted(rows) == ["current", "legacy", "refused"]
    for name in ROW_ABSENT:
        row = rows[name]
        assert FLEET_COLUMNS <= set(row), (name, FLEET_COLUMNS - set(row))
        assert (row["name"], row["lifecycle_state"], row["Value #B"]) == (name, "configured", 1)
        # Each column backed by this deployment's own samples, zero fallbacks removed.
        missing, out_of_date = check_targets(
            queries,
            lambda expr, _instant, name=name: any(
                sample["metric"].get("deployment") == name
                for sample in instant_at(mixed_stack, expr, at)
            ),
            ROW_ABSENT[name],
            ROW_MAY_BE_EMPTY[name],
        )
        assert (missing, out_of_date) == ([], []), name
    assert rows["refused"]["Value #B"] == 0, "the refused deployment's row shows it DOWN"


def test_mixed_fleet_was_scraped_only_with_verified_signatures(mixed_stack):
    for upstream in mixed_stack.upstreams.values():
        requests = upstream.requests
        assert requests and all(request.verified for request in requests)
        assert upstream.unexpected_requests() == []
    up = {s["metric"]["deployment"]: s for s in mixed_stack.query('up{job="vllm"}')}
    assert sorted(up) == ["current", "legacy", "refused"]
    assert "deployment_ocid" in up["legacy"]["metric"]
    # The demo is never active when a real target is configured.
    assert mixed_stack.query('up{demo="true"}') == []
    # Each deployment in its own format: engine label and renamed families only where current.
    assert mixed_stack.query('{__name__=~"vllm:.+", deployment="legacy", engine!=""}') == []
    assert mixed_stack.query(f'{KV_USAGE.old}{{deployment="legacy"}}')
    assert mixed_stack.query('{__name__=~"vllm:.+", deployment="current", engine!=""}')
    assert mixed_stack.query(f'{KV_USAGE.new}{{deployment="current"}}')
    assert mixed_stack.query(f'{KV_USAGE.old}{{deployment="current"}}') == []


def test_configured_targets_are_named_by_their_name(mixed_stack):
    # TARGETS gives no display name; Prometheus' relabelling (prometheus.yml) makes it the name,
    # on every series of the target, so the legends (`{{display_name}}`) name each deployment.
    names = {
        (s["metric"]["deployment"], s["metric"].get("display_name"))
        for s in mixed_stack.query('count by (deployment, display_name) ({job="vllm"})')
    }
    assert names == {("legacy", "legacy"), ("current", "current"), ("refused", "refused")}


def test_demo_is_visibly_labelled(demo_stack):
    result = demo_stack.query('count(up{job="vllm", demo="true"})')
    assert result and float(result[0]["value"][1]) == len(DEMO_NAMES) == 3


def test_allowances_name_visible_targets():
    # An allowance for a target that does not exist (renumbered panel, removed query) would hide
    # whatever later takes its place.
    visible = {
        TargetKey(uid, panel["id"], target["refId"])
        for uid, dashboard in load_dashboards().items()
        for panel in iter_panels(dashboard)
        for target in panel.get("targets") or []
        if not target.get("hide")
    }
    allowances = (
        QUIET_STACK_TARGETS,
        LOAD_DEPENDENT_TARGETS,
        DEMO_STAND_TARGETS,
        DEMO_MAY_BE_EMPTY,
        LEGACY_STAND_TARGETS,
        OCI_MONITORING_TARGETS,
        MIXED_FLEET_MAY_BE_EMPTY,
        MIXED_ALL_ABSENT,
        MIXED_ALL_MAY_BE_EMPTY,
        REFUSED_ALERT_TARGETS,
        *ROW_ABSENT.values(),
        *ROW_MAY_BE_EMPTY.values(),
    )
    for allowance in allowances:
        assert set(allowance) <= visible, set(allowance) - visible
