"""Every dashboard query, as Grafana would send it, against a real Prometheus fed by the real stack.

Two deployments' worth of data: (a) the built-in demo (current vLLM names, `engine` label), and
(b) a signature-checking fixture in an older vLLM's format (legacy names, no `engine` label),
scraped through the proxy with an API key. Every query must succeed, and every visible target of
every panel must return data on its own, with its zero fallback (`or vector(0)` and the like)
removed, except the targets listed below or in tests/support/dashboards.py, each with its reason.
A listed target that does return data fails the test as out of date.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

import pytest

from app.demo.fleet import demo_targets
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
    TargetKey("aqua-fleet", 6, "F"): "the older-vLLM fixture answers no request with a 5xx",
}


def query_errors_and_data(stack: Stack) -> tuple[list[str], list[str], list[str]]:
    """(failed queries, targets without data, out-of-date allowances) over both dashboards."""
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
        for query in panel_queries(dashboard, VARIABLES, rate_interval="1m", interval="2s")
    ]
    return errors, *check_targets(queries, has_data, stack.allowed_absent, stack.may_be_empty)


def assert_every_target_has_data(stack: Stack) -> None:
    errors, missing, out_of_date = query_errors_and_data(stack)
    assert (errors, missing, out_of_date) == ([], [], []), json.dumps(
        {"failed": errors, "without data": missing, "allowed empty, but have data": out_of_date},
        indent=1,
    )


@pytest.fixture(scope="module")
def demo_stack():
    stack = Stack.create(**FAST).start()
    for name in DEMO_NAMES:
        wait_for_history(stack, name)
    stack.allowed_absent = {
        **OPTIONAL_FEATURE_TARGETS,
        **QUIET_STACK_TARGETS,
        **DEMO_STAND_TARGETS,
        **OCI_MONITORING_TARGETS,
    }
    stack.may_be_empty = DEMO_MAY_BE_EMPTY
    yield stack
    stack.cleanup()


@pytest.fixture(scope="module")
def legacy_stack(tmp_path_factory):
    registry = KeyRegistry()
    creds = make_api_key_profile(tmp_path_factory.mktemp("oci"))
    creds.register_with(registry)
    legacy = LegacyVllm(seed=7)
    # `refused` knows no key: every scrape of it fails (signature refused, deployment down), so
    # the failure panels are shown with data rather than with their zero lines.
    with (
        SignedUpstream(registry, body_factory=legacy.render) as upstream,
        SignedUpstream(KeyRegistry()) as refused,
    ):
        stack = Stack.create(
            TARGETS=f"legacy={upstream.url},refused={refused.url}",
            OCI_CONFIG_FILE=str(creds.config_path),
            **FAST,
        ).start()
        wait_for_history(stack, "legacy")
        stack.upstream = upstream
        stack.allowed_absent = {
            **OPTIONAL_FEATURE_TARGETS,
            **NEW_VLLM_ONLY_TARGETS,
            **QUIET_STACK_TARGETS,
            **LEGACY_STAND_TARGETS,
            **OCI_MONITORING_TARGETS,
        }
        stack.may_be_empty = LOAD_DEPENDENT_TARGETS
        yield stack
        stack.cleanup()


def test_every_target_has_data_on_the_demo(demo_stack):
    assert_every_target_has_data(demo_stack)


def test_every_target_has_data_on_legacy_vllm(legacy_stack):
    assert_every_target_has_data(legacy_stack)


def test_legacy_deployment_was_scraped_only_with_verified_signatures(legacy_stack):
    requests = legacy_stack.upstream.requests
    assert requests and all(request.verified for request in requests)
    assert legacy_stack.upstream.unexpected_requests() == []
    up = {s["metric"]["deployment"]: s for s in legacy_stack.query('up{job="vllm"}')}
    assert sorted(up) == ["legacy", "refused"]
    assert "deployment_ocid" in up["legacy"]["metric"]
    # The demo is never active when a real target is configured.
    assert legacy_stack.query('up{demo="true"}') == []
    assert legacy_stack.query('{__name__=~"vllm:.+", engine!=""}') == []


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
    )
    for allowance in allowances:
        assert set(allowance) <= visible, set(allowance) - visible
