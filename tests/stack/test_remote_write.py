"""remote_write into a real central store: VictoriaMetrics on loopback, fed by two real stacks.

One receiver and two stacks serve every test of this module (starting them is the slow part):

- `server`: PROMETHEUS_MODE=server (local TSDB and rules) plus remote_write, MONITOR_NAME region-a;
- `agent`: PROMETHEUS_MODE=agent (no local queries, only a WAL that forwards), MONITOR_NAME region-b,
  with the Grafana stand-in so its datasource provisioning is rendered. It writes through a tenant
  gate, which routes only writes carrying its tenant headers (REMOTE_WRITE_HEADERS: X-Scope-OrgID as
  Mimir wants it, THANOS-TENANT as Thanos Receive does), then through vmauth, which lets only
  requests with its bearer token (REMOTE_WRITE_BEARER_TOKEN__FILE) through.

Both scrape the built-in demo deployment every 2 s. The one long scenario, the receiver stopped for
two minutes, runs last and once: the backlog in each stack's WAL must fill the window without a gap.
"""

from __future__ import annotations

import itertools
import json
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import yaml

from testkit.binaries import find_binary
from testkit.receivers import (
    BearerGate,
    PrometheusReceiver,
    QueryError,
    TenantGate,
    VictoriaMetrics,
)
from testkit.stack import Stack, short_tmp_dir
from testkit.waiting import wait_until
from tests.stack.test_dashboard_queries import (
    DEMO_MAY_BE_EMPTY,
    DEMO_STAND_TARGETS,
    QUIET_STACK_TARGETS,
)
from tests.support.dashboards import (
    ALL,
    OCI_MONITORING_TARGETS,
    OPTIONAL_FEATURE_TARGETS,
    REMOTE_WRITE_TARGETS,
    check_targets,
    load_dashboards,
    panel_queries,
)
from tests.support.fake_grafana import install_fake_grafana

pytestmark = pytest.mark.stack

INTERVAL_SECONDS = 2
FAST = {"SCRAPE_INTERVAL": f"{INTERVAL_SECONDS}s", "SCRAPE_TIMEOUT": "1s"}
SERVER, AGENT = "region-a", "region-b"
# A member of the demo fleet that is always up (the fleet's flaky member goes down later).
DEMO = "demo-chat"
AGENT_TOKEN = "agent-token-7f3a9c41d2"
TENANT_HEADERS = {"X-Scope-OrgID": "tenant-a", "THANOS-TENANT": "tenant-a"}
# Scrapes the receiver must hold of each stack before the checks (rate() over 1m windows).
DATA_SCRAPES = 20
OUTAGE_SECONDS = 120
VARIABLES = {"datasource": "aqua-prometheus", "deployment": ALL, "model_name": ALL}


def arrived(monitor: str, scrapes: int = DATA_SCRAPES) -> str:
    return (
        f'count_over_time(vllm:num_requests_running{{deployment="{DEMO}", aqua_monitor="{monitor}"}}'
        f"[5m]) >= {scrapes}"
    )


@pytest.fixture(scope="module")
def receiver():
    vm = VictoriaMetrics(short_tmp_dir("vm-")).start()
    yield vm
    vm.cleanup()


@pytest.fixture(scope="module")
def server(receiver):
    stack = Stack.create(REMOTE_WRITE_URL=receiver.write_url, MONITOR_NAME=SERVER, **FAST).start()
    yield stack
    stack.cleanup()


@pytest.fixture(scope="module")
def gate(receiver, tmp_path_factory):
    folder = tmp_path_factory.mktemp("vmauth")
    gate = BearerGate(receiver.url, AGENT_TOKEN, folder / "auth.yml").start()
    yield gate
    gate.stop()


@pytest.fixture(scope="module")
def tenant_gate(gate):
    with TenantGate(gate.url, TENANT_HEADERS) as tenant_gate:
        yield tenant_gate


@pytest.fixture(scope="module")
def agent(receiver, tenant_gate, tmp_path_factory):
    grafana = install_fake_grafana(tmp_path_factory.mktemp("grafana"))
    token_file = tmp_path_factory.mktemp("secrets") / "remote-write-token"
    token_file.write_text(AGENT_TOKEN + "\n")
    stack = Stack.create(
        PROMETHEUS_MODE="agent",
        REMOTE_WRITE_URL=tenant_gate.write_url,
        REMOTE_WRITE_HEADERS=",".join(f"{name}={value}" for name, value in TENANT_HEADERS.items()),
        REMOTE_WRITE_BEARER_TOKEN__FILE=str(token_file),
        MONITOR_NAME=AGENT,
        GRAFANA_ENABLED="true",
        GRAFANA_BIN=str(grafana),
        GRAFANA_DATASOURCE_URL=receiver.url,
        GRAFANA_DATASOURCE_HEADERS="X-Scope-OrgID=tenant-a",
        **FAST,
    ).start()
    yield stack
    stack.cleanup()


@pytest.fixture(scope="module")
def filled(receiver, server, agent):
    """The receiver, once it holds DATA_SCRAPES scrapes of both stacks."""
    receiver.wait_for(arrived(SERVER), timeout=120)
    receiver.wait_for(arrived(AGENT), timeout=60)
    return receiver


def _labels(series: dict) -> dict[str, str]:
    return {k: v for k, v in series["metric"].items() if k != "__name__"}


def test_samples_arrive_with_the_monitor_name_and_the_target_labels(filled, server):
    local = {s["metric"]["deployment"]: _labels(s) for s in server.query('up{job="vllm"}')}
    central = {
        s["metric"]["deployment"]: _labels(s)
        for s in filled.query(f'up{{job="vllm", aqua_monitor="{SERVER}"}}')
    }
    assert sorted(central) == sorted(local)
    assert DEMO in local
    for deployment, labels in local.items():
        assert central[deployment] == {**labels, "aqua_monitor": SERVER}
    # Not only `up`: the deployment's vLLM series and the stack's own jobs arrive too.
    names = filled.query(
        f'count by (job) ({{aqua_monitor="{SERVER}", __name__=~"vllm:.+|aqua_proxy_.+|prometheus_.+"}})'
    )
    assert {s["metric"]["job"] for s in names} == {"vllm", "aqua-proxy", "prometheus"}


def test_two_stacks_writing_into_one_store_stay_apart(filled, server, agent):
    result = filled.query(f'up{{job="vllm", deployment="{DEMO}"}}')
    by_monitor = {s["metric"]["aqua_monitor"]: s["metric"]["instance"] for s in result}
    assert by_monitor == {
        SERVER: server.proxy_url.removeprefix("http://"),
        AGENT: agent.proxy_url.removeprefix("http://"),
    }
    # Each stack's demo counts its own requests: two series, never one summed across stacks.
    counters = filled.query(
        f'sum by (aqua_monitor) (vllm:request_success_total{{deployment="{DEMO}"}})'
    )
    assert sorted(s["metric"]["aqua_monitor"] for s in counters) == sorted([SERVER, AGENT])


def test_agent_mode_forwards_without_local_queries(filled, agent, receiver, gate, tenant_gate):
    # Its samples arrived (`filled`) through a gate that routes only writes with the tenant
    # headers (every write the agent sent had them), then one that refuses writes without the token.
    assert tenant_gate.forwarded > 0 and tenant_gate.refused == []
    assert tenant_gate.status_without_tenant() == 401
    assert gate.status_without_token() == 401
    assert AGENT_TOKEN not in (agent.data_dir / "runtime" / "prometheus.yml").read_text()
    assert AGENT_TOKEN not in agent.logs()
    url = agent.prometheus_url + "/api/v1/query?query=up"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    body = json.load(refused.value)
    assert body == {
        "status": "error",
        "errorType": "execution",
        "error": "unavailable with Prometheus Agent",
    }
    # The WAL that forwards lives in DATA_DIR; no server TSDB is written.
    assert (agent.data_dir / "prometheus-agent" / "wal").is_dir()
    assert not (agent.data_dir / "prometheus" / "wal").exists()
    # Grafana's datasource, as provisioned for this start, is the central store.
    rendered = (
        agent.data_dir / "runtime" / "grafana-provisioning" / "datasources" / "prometheus.yaml"
    )
    (datasource,) = yaml.safe_load(rendered.read_text())["datasources"]
    assert datasource["url"] == receiver.url
    assert datasource["jsonData"]["httpHeaderName1"] == "X-Scope-OrgID"
    assert datasource["secureJsonData"]["httpHeaderValue1"] == "tenant-a"


def test_every_dashboard_query_runs_on_the_receiver_and_returns_data(filled, server):
    """Each target as Grafana would send it, against VictoriaMetrics' query API.

    An error is an engine incompatibility to fix in the query. A target without data must be one
    the demo's Prometheus checks allow to be empty (tests/stack/test_dashboard_queries.py), and
    must be empty on the server stack's own Prometheus too: the same data, the same answer.
    """
    # Subqueries with a 1m step (e.g. "Replica starts", [30m:1m]) need samples spanning two
    # steps, older than VictoriaMetrics' query latency offset (30 s): wait for 150 s of history.
    filled.wait_for(arrived(SERVER, scrapes=int(150 / INTERVAL_SECONDS)), timeout=240)
    errors: list[str] = []
    central_only_empty: list[str] = []

    def run(url_base: str, expr: str, instant: bool) -> dict:
        now = time.time()
        if instant:
            params = {"query": expr, "time": f"{now:.3f}"}
            path = "/api/v1/query"
        else:
            params = {"query": expr, "start": f"{now - 120:.3f}", "end": f"{now:.3f}", "step": "5"}
            path = "/api/v1/query_range"
        request = url_base + path + "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            return json.load(error)

    def has_data(expr: str, instant: bool) -> bool:
        body = run(filled.url, expr, instant)
        if body.get("status") != "success":
            errors.append(f"{body.get('error')} :: {expr}")
            return False
        found = bool(body["data"]["result"])
        if not found and run(server.prometheus_url, expr, instant)["data"]["result"]:
            central_only_empty.append(expr)
        return found

    queries = [
        query
        for dashboard in load_dashboards().values()
        for query in panel_queries(dashboard, VARIABLES, rate_interval="1m", interval="2s")
    ]
    assert sum(q.kind == "panel" for q in queries) > 100  # both dashboards, every visible target
    optional = {k: v for k, v in OPTIONAL_FEATURE_TARGETS.items() if k not in REMOTE_WRITE_TARGETS}
    allowed = {
        **optional,
        **QUIET_STACK_TARGETS,
        **DEMO_STAND_TARGETS,
        **DEMO_MAY_BE_EMPTY,
        **OCI_MONITORING_TARGETS,  # no compartment configured: the collector is off here
    }
    missing, _ = check_targets(queries, has_data, {}, allowed)
    variables = [q for q in queries if q.kind == "variable"]
    empty_variables = [q.expr for q in variables if not has_data(q.expr, True)]
    assert (errors, missing, central_only_empty, empty_variables) == ([], [], [], []), json.dumps(
        {
            "failed on the receiver": errors,
            "without data": missing,
            "empty on the receiver only": central_only_empty,
            "variables without values": empty_variables,
        },
        indent=1,
    )
    # The remote-write row has data here: the allowance that hides it elsewhere is not needed.
    for key in REMOTE_WRITE_TARGETS:
        (query,) = [q for q in queries if q.key == key]
        assert has_data(query.expr, False), query


def test_prometheus_own_receiver_with_basic_auth_from_a_password_file(tmp_path):
    """Prometheus' remote-write receiver, behind basic auth: the login from the settings reaches it."""
    password = "receiver-password-51c2e8"
    receiver = PrometheusReceiver(
        find_binary("prometheus", "PROMETHEUS_BIN"), short_tmp_dir("promrx-"), "collector", password
    ).start()
    password_file = tmp_path / "password"
    password_file.write_text(password + "\n")
    stack = Stack.create(
        REMOTE_WRITE_URL=receiver.write_url,
        REMOTE_WRITE_BASIC_AUTH_USER="collector",
        REMOTE_WRITE_BASIC_AUTH_PASSWORD__FILE=str(password_file),
        MONITOR_NAME="region-c",
        **FAST,
    )
    try:
        assert receiver.status_without_login() == 401
        stack.start()
        wait_until(
            lambda: receiver.query(
                f'up{{job="vllm", deployment="{DEMO}", aqua_monitor="region-c"}}'
            ),
            60,
            0.5,
            "no sample reached Prometheus' receiver",
        )
        assert password not in (stack.data_dir / "runtime" / "prometheus.yml").read_text()
        assert password not in stack.logs()
    finally:
        stack.cleanup()
        receiver.stop()


def _backlog_drained(receiver: VictoriaMetrics, monitor: str) -> bool:
    try:
        newest = receiver.query(f'timestamp(up{{job="vllm", aqua_monitor="{monitor}"}})')
    except QueryError:
        return False
    return bool(newest) and time.time() - float(newest[0]["value"][1]) < 5 * INTERVAL_SECONDS


@pytest.mark.timeout(480)
def test_a_two_minute_receiver_outage_leaves_no_gap(filled, server):
    """Stop the receiver for two minutes: once the WALs' backlog drains, every step is there."""
    receiver = filled
    receiver.stop()
    down_at = time.time()
    time.sleep(OUTAGE_SECONDS)  # the outage itself: time must pass
    # Meanwhile the server stack measured the growing delivery lag (AquaRemoteWriteBehind's expr).
    lag = server.query(
        "max(prometheus_remote_storage_highest_timestamp_in_seconds) - ignoring (remote_name, url) "
        "group_right max by (remote_name, url) "
        "(prometheus_remote_storage_queue_highest_sent_timestamp_seconds)"
    )
    assert lag and float(lag[0]["value"][1]) > OUTAGE_SECONDS / 2, lag
    receiver.start()
    up_at = time.time()
    deadline = time.monotonic() + 120
    for monitor in (SERVER, AGENT):
        while not _backlog_drained(receiver, monitor):
            assert time.monotonic() < deadline, (
                f"{monitor}: backlog not delivered\n{receiver.logs()}"
            )
            time.sleep(1)
    start, end = down_at - 10, up_at + 10
    steps = int((end - start) // INTERVAL_SECONDS) + 1
    for monitor in (SERVER, AGENT):
        selector = f'up{{job="vllm", deployment="{DEMO}", aqua_monitor="{monitor}"}}'
        (series,) = receiver.query_range(selector, start, end, INTERVAL_SECONDS)
        stamps = [float(t) for t, _ in series["values"]]
        assert len(stamps) == steps, (monitor, steps, len(stamps), _gaps(stamps))
        # The raw samples too: one per scrape over the outage, give or take a scrape's jitter.
        window = int(up_at - down_at)
        (raw,) = receiver.query(f"count_over_time({selector}[{window}s])", at=up_at)
        assert float(raw["value"][1]) >= window / INTERVAL_SECONDS - 2, (monitor, raw)


def _gaps(stamps: list[float]) -> list[tuple[float, float]]:
    return [(a, b) for a, b in itertools.pairwise(stamps) if b - a > INTERVAL_SECONDS]
