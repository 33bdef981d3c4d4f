"""Every dashboard query, as Grafana would send it, against a real Prometheus fed by the real stack.

Two deployments' worth of data: (a) the built-in demo (current vLLM names, `engine` label), and
(b) a signature-checking fixture in an older vLLM's format (legacy names, no `engine` label),
scraped through the proxy with an API key. Every query must succeed; every panel must return data
except the optional-feature panels named in tests/support/dashboards.py.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

import pytest

from tests.support.cavage import KeyRegistry
from tests.support.dashboards import (
    ALL,
    NEW_VLLM_ONLY_PANELS,
    OPTIONAL_PANELS,
    load_dashboards,
    panel_queries,
)
from tests.support.oci_credentials import make_api_key_profile
from tests.support.signed_upstream import SignedUpstream
from tests.support.stack import Stack
from tests.support.vllm_payloads import LegacyVllm

pytestmark = pytest.mark.stack

FAST = {"SCRAPE_INTERVAL": "2s", "SCRAPE_TIMEOUT": "1s"}
VARIABLES = {"datasource": "aqua-prometheus", "deployment": ALL, "model_name": ALL}
DATA_SECONDS = 40  # enough scrapes for rate() over 1m windows and for resets()


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


def collect(stack: Stack) -> dict[tuple[str, str], dict]:
    """Per panel (dashboard uid, title + id): whether any query returned data, and the errors."""
    panels: dict[tuple[str, str], dict] = {}
    for dashboard in load_dashboards().values():
        for query in panel_queries(dashboard, VARIABLES, rate_interval="1m", interval="2s"):
            key = (query.dashboard_uid, f"{query.panel_title} #{query.panel_id}")
            entry = panels.setdefault(
                key, {"title": query.panel_title, "data": False, "errors": []}
            )
            body = run_query(stack, query.expr, instant=query.instant)
            if body.get("status") != "success":
                entry["errors"].append(f"{query.ref_id}: {body.get('error')} :: {query.expr}")
                continue
            if body["data"]["result"]:
                entry["data"] = True
    return panels


def assert_panels(panels: dict, allowed_empty: frozenset[str]) -> None:
    errors = {key: entry["errors"] for key, entry in panels.items() if entry["errors"]}
    assert errors == {}, json.dumps({f"{k[0]}/{k[1]}": v for k, v in errors.items()}, indent=1)
    empty = sorted(
        f"{k[0]}/{k[1]}"
        for k, e in panels.items()
        if not e["data"] and e["title"] not in allowed_empty
    )
    assert empty == [], f"panels without data: {empty}"
    # The allowance must not hide everything: most panels really returned data.
    assert sum(1 for e in panels.values() if e["data"]) >= len(panels) - len(allowed_empty) - 2


@pytest.fixture(scope="module")
def demo_stack():
    stack = Stack.create(**FAST).start()
    stack.wait_for('count_over_time(vllm:num_requests_running{deployment="demo"}[5m]) >= 3')
    time.sleep(DATA_SECONDS)
    yield stack
    stack.cleanup()


@pytest.fixture(scope="module")
def legacy_stack(tmp_path_factory):
    registry = KeyRegistry()
    creds = make_api_key_profile(tmp_path_factory.mktemp("oci"))
    creds.register_with(registry)
    legacy = LegacyVllm(seed=7)
    with SignedUpstream(registry, body_factory=legacy.render) as upstream:
        stack = Stack.create(
            TARGETS=f"legacy={upstream.url}", OCI_CONFIG_FILE=str(creds.config_path), **FAST
        ).start()
        stack.wait_for('count_over_time(vllm:num_requests_running{deployment="legacy"}[5m]) >= 3')
        time.sleep(DATA_SECONDS)
        stack.upstream = upstream
        yield stack
        stack.cleanup()


def test_every_panel_has_data_on_the_demo(demo_stack):
    assert_panels(collect(demo_stack), OPTIONAL_PANELS)


def test_every_panel_has_data_on_legacy_vllm(legacy_stack):
    assert_panels(collect(legacy_stack), OPTIONAL_PANELS | NEW_VLLM_ONLY_PANELS)


def test_legacy_deployment_was_scraped_only_with_verified_signatures(legacy_stack):
    requests = legacy_stack.upstream.requests
    assert requests and all(request.verified for request in requests)
    assert legacy_stack.upstream.unexpected_requests() == []
    up = legacy_stack.query('up{job="vllm"}')
    assert [series["metric"]["deployment"] for series in up] == ["legacy"]
    assert "deployment_ocid" in up[0]["metric"]
    # The demo is never active when a real target is configured.
    assert legacy_stack.query('up{deployment="demo"}') == []
    assert legacy_stack.query('{__name__=~"vllm:.+", engine!=""}') == []


def test_demo_is_visibly_labelled(demo_stack):
    result = demo_stack.query('count(up{job="vllm", demo="true"})')
    assert result and float(result[0]["value"][1]) == 1
