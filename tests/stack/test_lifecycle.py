"""The whole stack through `aqua-metrics start`: real supervisord, proxy and Prometheus.

Asserts go through Prometheus' HTTP API and the process table, as a user or an operator would see.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from testkit.stack import Stack, base_environment, run_start, short_tmp_dir
from testkit.waiting import wait_until

pytestmark = pytest.mark.stack

FAST = {"SCRAPE_INTERVAL": "2s", "SCRAPE_TIMEOUT": "1s"}


@pytest.fixture(scope="module")
def demo_stack():
    stack = Stack.create(**FAST).start()
    yield stack
    stack.cleanup()


def test_demo_deployment_is_scraped_with_its_labels(demo_stack):
    up = demo_stack.wait_for('up{job="vllm"} == 1', predicate=lambda result: len(result) == 3)
    assert sorted(s["metric"]["deployment"] for s in up) == [
        "demo-batch-jobs",
        "demo-chat",
        "demo-support-bot",
    ]
    assert all(s["metric"]["demo"] == "true" for s in up)
    series = demo_stack.wait_for('vllm:num_requests_running{deployment="demo-chat"}')
    assert series[0]["metric"]["model_name"]
    assert demo_stack.wait_for('up{job="aqua-proxy"} == 1')
    assert demo_stack.wait_for('up{job="prometheus"} == 1')


def test_proxy_and_prometheus_listen_on_loopback_only(demo_stack):
    listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
    ports = {demo_stack.ports["PROXY_PORT"], demo_stack.ports["PROMETHEUS_PORT"]}
    for line in listening:
        fields = line.split()
        address, port_hex = fields[1].split(":")
        if fields[3] == "0A" and int(port_hex, 16) in ports:  # LISTEN
            assert address == "0100007F", f"port {int(port_hex, 16)} listens on {address}"


def _sample_count(stack: Stack, expr: str) -> float:
    result = stack.query(f"sum(count_over_time({expr}[1h]))")  # over demo-chat's 2 replicas
    return float(result[0]["value"][1]) if result else 0.0


def _restarted(stack, program: str, old_pid: int) -> bool:
    """supervisord runs `program` under a pid other than `old_pid`."""
    try:
        return stack.supervisor_pid(program) != old_pid
    except AssertionError:  # between the death and the restart there is no pid
        return False


def test_kill_9_of_prometheus_restarts_it_and_keeps_samples(demo_stack):
    demo_stack.wait_for('count_over_time(up{job="vllm"}[1h]) >= 3')
    before = _sample_count(demo_stack, 'up{job="vllm"}')
    old_pid = demo_stack.supervisor_pid("prometheus")
    os.kill(old_pid, signal.SIGKILL)
    wait_until(
        lambda: _restarted(demo_stack, "prometheus", old_pid), 30, 0.3, "prometheus not restarted"
    )
    demo_stack.wait_for(
        'count_over_time(up{job="vllm"}[1h])',
        predicate=lambda r: r and float(r[0]["value"][1]) > before,
    )
    assert _sample_count(demo_stack, 'up{job="vllm"}') > before


def test_kill_9_of_the_proxy_restarts_it_and_scraping_resumes(demo_stack):
    old_pid = demo_stack.supervisor_pid("proxy")
    os.kill(old_pid, signal.SIGKILL)
    wait_until(lambda: _restarted(demo_stack, "proxy", old_pid), 30, 0.3, "proxy not restarted")
    demo_stack.wait_for('up{job="vllm"} == 1')
    new_pid = demo_stack.supervisor_pid("proxy")
    assert new_pid != old_pid
    # A scrape newer than the kill, served by the new proxy process.
    demo_stack.wait_for(
        "time() - timestamp(up{job='vllm'}) < 3 and up{job='vllm'} == 1", timeout=30
    )
    demo_stack.wait_for(
        'aqua_proxy_scrape_duration_seconds_count{deployment="demo-chat"} > 0 and on() (time() - process_start_time_seconds{job="aqua-proxy"}) < 60'
    )


def test_sigterm_stops_everything_and_history_survives_a_restart():
    stack = Stack.create(**FAST)
    try:
        stack.start()
        stack.wait_for(
            'count_over_time(vllm:num_requests_running{deployment="demo-chat"}[1h]) >= 2'
        )
        before = _sample_count(stack, 'vllm:num_requests_running{deployment="demo-chat"}')
        started = time.monotonic()
        assert stack.stop() == 0
        assert time.monotonic() - started < 10, "stop must fit a container's grace period"
        assert stack.processes_using_data_dir() == [], "orphan processes after SIGTERM"

        again = Stack(
            env=stack.env, data_dir=stack.data_dir, log_path=stack.log_path, ports=stack.ports
        )
        again.start()
        try:
            assert (
                _sample_count(again, 'vllm:num_requests_running{deployment="demo-chat"}') >= before
            )
        finally:
            assert again.stop() == 0
        assert again.processes_using_data_dir() == []
    finally:
        stack.cleanup()


def test_a_program_that_keeps_crashing_stops_the_stack_non_zero(tmp_path):
    crashing = short_tmp_dir() / "prometheus"
    crashing.write_text("#!/bin/sh\necho 'simulated crash' >&2\nexit 3\n")
    crashing.chmod(0o755)
    stack = Stack.create(PROMETHEUS_BIN=str(crashing), **FAST)
    try:
        stack.start(wait=False)
        assert stack.process is not None
        code = stack.process.wait(timeout=90)
        assert code == 1, stack.logs()
        assert "prometheus kept failing (FATAL)" in stack.logs()
        assert stack.processes_using_data_dir() == []
    finally:
        stack.cleanup()
        crashing.unlink()


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (
            {"PROXY_PORT": "eighty"},
            "aqua-metrics: PROXY_PORT: 'eighty' is not a port number (1-65535)",
        ),
        ({"OCI_AUTH": "magic"}, "aqua-metrics: OCI_AUTH: 'magic' is not one of"),
        (
            {"TARGET": "http://example.com/metrics"},
            "aqua-metrics: TARGET: 'http://example.com/metrics' uses plain http",
        ),
        (
            {"PROMETHEUS_BIN": "/nonexistent/prometheus"},
            "aqua-metrics: PROMETHEUS_BIN: no prometheus executable at /nonexistent/prometheus",
        ),
        (
            {"GRAFANA_ENABLED": "true", "GRAFANA_BIN": "/nonexistent/grafana"},
            "aqua-metrics: GRAFANA_ENABLED: true, but no grafana binary",
        ),
        (
            {"DATA_DIR": "/proc/aqua-metrics"},
            "aqua-metrics: DATA_DIR: cannot create /proc/aqua-metrics",
        ),
    ],
)
def test_bad_settings_exit_fast_with_one_line_and_nothing_running(settings, expected):
    data_dir = short_tmp_dir()
    env = base_environment({"DATA_DIR": str(data_dir), **settings})
    started = time.monotonic()
    result = run_start(env, timeout=30)
    assert result.returncode == 2
    assert time.monotonic() - started < 10
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (data_dir / "runtime" / "prometheus.yml").exists(), (
        "nothing may be prepared on bad input"
    )


def test_a_port_in_use_is_reported_before_anything_starts():
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = base_environment({"DATA_DIR": str(short_tmp_dir()), "PROMETHEUS_PORT": str(port)})
        result = run_start(env, timeout=30)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"aqua-metrics: PROMETHEUS_PORT: 127.0.0.1:{port} is already in use"
    )


def test_alert_rules_are_loaded_and_evaluate_cleanly(demo_stack):
    import json
    import urllib.request

    import yaml

    expected = {
        rule["alert"]
        for group in yaml.safe_load(
            Path(demo_stack.env["PYTHONPATH"], "rules", "aqua-metrics.rules.yml").read_text()
        )["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    rules: list[dict] = []

    def every_rule_evaluated() -> bool:  # "unknown" until a rule's first evaluation
        nonlocal rules
        with urllib.request.urlopen(
            f"{demo_stack.prometheus_url}/api/v1/rules", timeout=10
        ) as response:
            groups = json.load(response)["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return bool(rules) and all(rule["health"] != "unknown" for rule in rules)

    wait_until(every_rule_evaluated, 30, 1, lambda: f"rules not all evaluated: {rules}")
    assert {rule["name"] for rule in rules} == expected
    assert all(rule["health"] == "ok" for rule in rules), [
        (r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"
    ]


def test_unusable_key_stops_start_in_one_line(tmp_path):
    config = tmp_path / "config"
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----\n")
    config.write_text(
        "[DEFAULT]\nuser=ocid1.user.oc1..a\nfingerprint=aa:bb\ntenancy=ocid1.tenancy.oc1..b\n"
        f"region=us-ashburn-1\nkey_file={key}\n"
    )
    env = base_environment(
        {
            "DATA_DIR": str(short_tmp_dir()),
            "TARGET": "https://modeldeployment.us-ashburn-1.oci.customer-oci.com/ocid1.datasciencemodeldeployment.oc1.iad.abc",
            "OCI_CONFIG_FILE": str(config),
        }
    )
    result = run_start(env, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("aqua-metrics: OCI_CONFIG_PROFILE ([DEFAULT] in ")
    assert lines[0].endswith("is not a usable private key, or its pass_phrase is wrong")


def test_without_receivers_alertmanager_runs_and_start_says_once_alerts_go_nowhere(demo_stack):
    import urllib.request

    with urllib.request.urlopen(f"{demo_stack.alertmanager_url}/-/ready", timeout=5) as ready:
        assert ready.status == 200
    note = "no alert receiver configured; alerts are visible in Grafana and Alertmanager"
    assert demo_stack.logs().count(note) == 1
