"""Alerts that reach people, through the real stack: supervisord, proxy, Prometheus and Debian's
Alertmanager, with two signature-checking deployment stand-ins, the signature-checking OCI
Notifications stand-in and a recording webhook, all on loopback.

One stack serves the long scenario (the down alert's `for` is two minutes, and it is what real
users get). The intervals it shortens are product settings: SCRAPE_INTERVAL (also the rule
evaluation interval), ALERT_GROUP_WAIT and ALERT_GROUP_INTERVAL. Nothing is waited for blindly:
every step polls for the state it needs (notifications, Alertmanager's API and metrics, files).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from app.settings import parse_duration
from app.stack import files
from testkit.cavage import BODY_HEADERS, KeyRegistry
from testkit.oci_credentials import fake_ocid, make_api_key_profile
from testkit.stack import Stack
from testkit.waiting import wait_until
from tests.support.alert_webhook import AlertWebhook
from tests.support.notifications_api import NotificationsApi
from tests.support.signed_upstream import FaultMode, SignedUpstream

pytestmark = [pytest.mark.stack, pytest.mark.timeout(900)]

DOWN = "AquaDeploymentDown"
TOPIC = fake_ocid("onstopic", "iad")
BEARER = "webhook-bearer-s3cr3t"
GROUP_WAIT = "1s"
GROUP_INTERVAL = "2s"
# Scrape, rule evaluation, the proxy's upstream timeout and delivery: what may come on top of the
# rule's `for` and the group wait before a notification arrives.
LATENCY_ALLOWANCE = 30.0


def rule_for_seconds(name: str) -> float:
    for path in files.rules_dir().glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == name:
                    return parse_duration(rule.get("for", "0s")) or 0.0
    raise AssertionError(f"no rule {name}")


def counting_body() -> bytes:
    """A vLLM page whose token counter moves, so no stalled-generation alert joins in."""
    tokens = next(_tokens)
    labels = 'engine="0",model_name="test-model"'
    return (
        "# TYPE vllm:num_requests_running gauge\n"
        f"vllm:num_requests_running{{{labels}}} 1.0\n"
        "# TYPE vllm:generation_tokens_total counter\n"
        f"vllm:generation_tokens_total{{{labels}}} {tokens}.0\n"
    ).encode()


_tokens = itertools.count(1000, 17)


def http_json(url: str, payload: object | None = None, method: str = "GET") -> object:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


def metric(url: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` (with these labels) in a /metrics page; 0 when absent."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, value = line.rsplit(" ", 1)
        if series.split("{", 1)[0] != name:
            continue
        if all(f'{k}="{v}"' in series for k, v in labels.items()):
            total += float(value)
    return total


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    registry = KeyRegistry()
    creds = make_api_key_profile(tmp_path_factory.mktemp("oci"))
    creds.register_with(registry)
    with (
        SignedUpstream(registry, body_factory=counting_body) as alpha,
        SignedUpstream(registry, body_factory=counting_body) as beta,
        NotificationsApi(registry, {TOPIC}) as topic,
        AlertWebhook() as webhook,
    ):
        stack = Stack.create(
            TARGETS=f"alpha={alpha.url},beta={beta.url}",
            OCI_AUTH="api_key",
            OCI_CONFIG_FILE=str(creds.config_path),
            OCI_NOTIFICATION_TOPIC_ID=TOPIC,
            OCI_NOTIFICATIONS_ENDPOINT=topic.endpoint,
            ALERT_WEBHOOK_URL=webhook.url,
            ALERT_WEBHOOK_BEARER_TOKEN=BEARER,
            GRAFANA_ROOT_URL="https://grafana.example.com",
            SCRAPE_INTERVAL="1s",
            SCRAPE_TIMEOUT="1s",
            ALERT_GROUP_WAIT=GROUP_WAIT,
            ALERT_GROUP_INTERVAL=GROUP_INTERVAL,
        )
        try:
            stack.start()
            yield {
                "stack": stack,
                "alpha": alpha,
                "beta": beta,
                "topic": topic,
                "webhook": webhook,
                "creds": creds,
            }
        finally:
            stack.cleanup()


def topic_titles(topic: NotificationsApi) -> list[str]:
    return [message.title or "" for message in topic.messages]


def test_start_runs_alertmanager_on_loopback_and_prometheus_sends_to_it(world):
    stack: Stack = world["stack"]
    assert http_json(f"{stack.alertmanager_url}/api/v2/status")["cluster"]["status"] == "disabled"
    expected = [{"url": f"{stack.alertmanager_url}/api/v2/alerts"}]
    wait_until(
        lambda: (
            http_json(f"{stack.prometheus_url}/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
            == expected
        ),
        30,
        0.3,
        "Prometheus never discovered Alertmanager",
    )
    assert "no alert receiver configured" not in stack.logs()
    mode = (stack.data_dir / "runtime" / "alertmanager.yml").stat().st_mode & 0o777
    assert mode == 0o600
    assert BEARER not in stack.logs()
    # Alertmanager's status API masks the bearer token (Debian's 0.25 still shows webhook URLs).
    assert BEARER not in json.dumps(http_json(f"{stack.alertmanager_url}/api/v2/status"))


def test_down_alert_reaches_webhook_and_topic_retries_survive_a_kill_and_silences_hold(world):
    stack: Stack = world["stack"]
    alpha: SignedUpstream = world["alpha"]
    beta: SignedUpstream = world["beta"]
    topic: NotificationsApi = world["topic"]
    webhook: AlertWebhook = world["webhook"]
    am = stack.alertmanager_url
    stack.wait_for('up{job="vllm"} == 1', predicate=lambda r: len(r) == 2)
    for_seconds = rule_for_seconds(DOWN)
    group_wait = parse_duration(GROUP_WAIT) or 0.0

    # 1. Both deployments stop answering; the topic fails its first two publishes.
    topic.fail_next(2, 500)
    stopped = time.monotonic()
    for upstream in (alpha, beta):
        upstream.set_faults(mode=FaultMode.STATUS, status=503)

    def firing_everywhere() -> bool:
        titles = topic_titles(topic)
        return all(
            webhook.matching(DOWN, name, "firing") and f"[FIRING] {DOWN}: {name}" in titles
            for name in ("alpha", "beta")
        )

    wait_until(
        firing_everywhere,
        for_seconds + group_wait + LATENCY_ALLOWANCE + 60,
        0.5,
        lambda: (
            f"webhook={[d.payload for d in webhook.deliveries]} topic={topic.calls}\n"
            + stack.logs()[-3000:]
        ),
    )
    arrived = max(
        webhook.matching(DOWN, "alpha", "firing")[0].received_at,
        webhook.matching(DOWN, "beta", "firing")[0].received_at,
    )
    assert for_seconds <= arrived - stopped <= for_seconds + group_wait + LATENCY_ALLOWANCE

    # The webhook got the bearer token; the topic got signed messages, after two refusals.
    delivery = webhook.matching(DOWN, "alpha", "firing")[0]
    assert delivery.headers["authorization"] == f"Bearer {BEARER}"
    statuses = [call.status for call in topic.calls]
    assert statuses[:2] == [500, 500] and statuses.count(200) >= 2, statuses
    [alpha_message] = [m for m in topic.messages if m.title == f"[FIRING] {DOWN}: alpha"]
    assert alpha_message.verified.key_id == world["creds"].key_id
    assert set(BODY_HEADERS) <= set(alpha_message.verified.params.headers)
    assert "Deployment alpha cannot be scraped" in alpha_message.body
    assert "var-deployment=alpha" in alpha_message.body
    assert metric(stack.proxy_url, "aqua_proxy_notification_failures_total") >= 2
    assert metric(stack.proxy_url, "aqua_proxy_notifications_published_total") >= 2

    # 2. A silence for beta, through Alertmanager's API.
    now = datetime.now(UTC)
    silence_id = http_json(
        f"{am}/api/v2/silences",
        {
            "matchers": [
                {"name": "alertname", "value": DOWN, "isRegex": False, "isEqual": True},
                {"name": "deployment", "value": "beta", "isRegex": False, "isEqual": True},
            ],
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(hours=1)).isoformat(),
            "createdBy": "test_alerting",
            "comment": "beta is being worked on",
        },
        method="POST",
    )["silenceID"]

    # 3. kill -9 of Alertmanager, once its notification log and silences are on disk.
    store = stack.data_dir / "alertmanager"
    wait_until(
        lambda: (
            b"alpha" in (store / "nflog").read_bytes()
            and silence_id.encode() in (store / "silences").read_bytes()
        ),
        60,
        0.5,
        "Alertmanager never wrote its notification log and silences to DATA_DIR",
    )
    firing_before = (
        len(webhook.matching(DOWN, "alpha", "firing")),
        topic_titles(topic).count(f"[FIRING] {DOWN}: alpha"),
    )
    old_pid = stack.supervisor_pid("alertmanager")
    os.kill(old_pid, signal.SIGKILL)

    def restarted() -> bool:
        try:
            return stack.supervisor_pid("alertmanager") != old_pid
        except AssertionError:
            return False

    wait_until(restarted, 30, 0.3, "alertmanager not restarted")

    # Prometheus re-sends the active alerts (within its resend delay, 1m); then alpha's group
    # goes through the pipeline twice (two notification-log lookups per flush, one per webhook).
    def alpha_active_again() -> bool:
        try:
            alerts = http_json(f"{am}/api/v2/alerts?filter=deployment%3D%22alpha%22")
        except OSError:
            return False
        return any(a["labels"]["alertname"] == DOWN for a in alerts)

    wait_until(alpha_active_again, 90, 0.5, "Prometheus did not re-send the alert")
    wait_until(
        lambda: metric(am, "alertmanager_nflog_queries_total") >= 4,
        30,
        0.3,
        "alpha's group was never flushed after the restart",
    )
    assert (
        len(webhook.matching(DOWN, "alpha", "firing")),
        topic_titles(topic).count(f"[FIRING] {DOWN}: alpha"),
    ) == firing_before, "the restart re-sent a notification already sent"
    silences = http_json(f"{am}/api/v2/silences")
    [kept] = [s for s in silences if s["id"] == silence_id]
    assert kept["status"]["state"] == "active", "the silence was lost with the kill"

    # 4. Both come back: alpha's resolved notification arrives; beta's is silenced.
    for upstream in (alpha, beta):
        upstream.reset_faults()
    wait_until(
        lambda: (
            webhook.matching(DOWN, "alpha", "resolved")
            and f"[RESOLVED] {DOWN}: alpha" in topic_titles(topic)
        ),
        for_seconds + LATENCY_ALLOWANCE,
        0.5,
        lambda: f"webhook={[d.payload for d in webhook.deliveries]}\n" + stack.logs()[-3000:],
    )
    # Both groups are flushed and gone once their alerts are resolved: beta's went through the
    # pipeline too, and the silence stopped it.
    wait_until(
        lambda: metric(am, "alertmanager_dispatcher_aggregation_groups") == 0,
        60,
        0.5,
        "Alertmanager still holds alert groups",
    )
    assert webhook.matching(DOWN, "beta", "resolved") == []
    assert f"[RESOLVED] {DOWN}: beta" not in topic_titles(topic)
    resolved = [m for m in topic.messages if m.title == f"[RESOLVED] {DOWN}: alpha"]
    assert "Resolved:" in resolved[0].body


def test_test_alert_reaches_every_receiver_and_says_so(world):
    stack: Stack = world["stack"]
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "app", "test-alert"],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "oci-notifications: OK (published to the topic)" in lines, lines
    assert "webhook: OK (accepted the notification)" in lines, lines
    assert time.monotonic() - started < 60
    assert any("AquaMetricsTestAlert" in (m.title or "") for m in world["topic"].messages)
    assert any(
        d.concerns("AquaMetricsTestAlert", d.labels()[0].get("deployment", ""))
        for d in world["webhook"].deliveries
    )
    assert BEARER not in result.stdout + result.stderr


def test_test_alert_reports_a_failing_topic(world):
    stack: Stack = world["stack"]
    topic: NotificationsApi = world["topic"]
    topic.fail_next(1000, 500)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "app", "test-alert"],
            env=stack.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        topic.fail_next(0)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "oci-notifications: FAILED (the topic did not take it (service_error))" in lines, lines
    assert "webhook: OK (accepted the notification)" in lines, lines


def test_no_alerting_secret_in_logs_metrics_or_labels(world):
    """After everything above: the webhook URL's secret path and the bearer token appear in no log
    line, no /metrics page, no Prometheus label. (Alertmanager's own status API masks the token;
    Debian's 0.25 still shows webhook URLs there, 0.26+ masks them too: loopback only.)"""
    stack: Stack = world["stack"]
    secrets = (AlertWebhook.SECRET_PATH, BEARER)
    pages = [stack.logs()]
    for url in (stack.proxy_url, stack.alertmanager_url, stack.prometheus_url):
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
            pages.append(response.read().decode())
    pages.append(json.dumps(http_json(f"{stack.prometheus_url}/api/v1/targets")))
    pages.append(json.dumps(http_json(f"{stack.prometheus_url}/api/v1/alerts")))
    for page in pages:
        for secret in secrets:
            assert secret not in page
    # The secrets are in use (so their absence above means something): in the 0600 file only.
    rendered = (stack.data_dir / "runtime" / "alertmanager.yml").read_text()
    assert AlertWebhook.SECRET_PATH in rendered and BEARER in rendered
