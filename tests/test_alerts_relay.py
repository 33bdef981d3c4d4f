"""The proxy's OCI Notifications relay (`POST /alerts/oci-notifications`), with the real SDK
publishing over loopback to the signature-checking Notifications stand-in."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from app.alerts.message import MAX_BODY_BYTES, MAX_TITLE_CHARS, build_message
from app.credentials import build_credentials
from app.server import create_app
from app.settings import load_settings
from testkit.oci_credentials import (
    TokenIssuer,
    fake_ocid,
    make_resource_principal_v22,
    make_security_token_profile,
)
from tests.support.notifications_api import NotificationsApi

TOPIC = fake_ocid("onstopic", "iad")
ROUTE = "/alerts/oci-notifications"


def notification(status: str = "firing", deployment: str = "md-alpha", **extra) -> dict:
    """An Alertmanager webhook payload (version 4) with one alert."""
    alert = {
        "status": status,
        "labels": {
            "alertname": "AquaDeploymentDown",
            "deployment": deployment,
            "severity": "critical",
        },
        "annotations": {
            "summary": f"Deployment {deployment} cannot be scraped",
            "description": "Prometheus has not been able to scrape it for 2 minutes.",
        },
        "startsAt": "2026-11-27T10:00:00.123Z",
        "endsAt": "2026-11-27T10:05:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph",
        "fingerprint": "abc",
    }
    alert.update(extra)
    return {
        "version": "4",
        "status": status,
        "receiver": "aqua-metrics",
        "groupLabels": {"alertname": "AquaDeploymentDown", "deployment": deployment},
        "commonLabels": alert["labels"],
        "commonAnnotations": alert["annotations"],
        "externalURL": "http://127.0.0.1:9093",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
        "alerts": [alert],
    }


@pytest.fixture
def topic_api(registry):
    with NotificationsApi(registry, {TOPIC}) as api:
        yield api


def settings_env(api_key, topic_api, **extra) -> dict[str, str]:
    return {
        "OCI_AUTH": "api_key",
        "OCI_CONFIG_FILE": str(api_key.config_path),
        "OCI_NOTIFICATION_TOPIC_ID": TOPIC,
        "OCI_NOTIFICATIONS_ENDPOINT": topic_api.endpoint,
        "DATA_DIR": "/tmp/unused-by-the-proxy",
        **extra,
    }


async def _post(env: dict[str, str], payload, client_address=("127.0.0.1", 40000)):
    settings = load_settings(env)
    app = create_app(settings, build_credentials(settings.proxy.auth))
    transport = httpx.ASGITransport(app=app, client=client_address)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as client:
            if isinstance(payload, bytes):
                answer = await client.post(ROUTE, content=payload)
            else:
                answer = await client.post(ROUTE, json=payload)
            metrics = (await client.get("/metrics")).text
            sd = (await client.get("/sd")).text
    return answer, metrics, sd


def post(env: dict[str, str], payload, client_address=("127.0.0.1", 40000)):
    """The relay as Alertmanager (or `client_address`) reaches it: status, /metrics, /sd."""
    return asyncio.run(_post(env, payload, client_address))


def test_a_notification_is_published_once_signed_with_a_title_naming_alert_and_deployment(
    api_key, topic_api
):
    env = settings_env(api_key, topic_api, GRAFANA_ROOT_URL="https://grafana.example.com/")
    answer, metrics, sd = post(env, notification())

    assert answer.status_code == 200, answer.text
    [message] = topic_api.messages
    assert message.title == "[FIRING] AquaDeploymentDown: md-alpha"
    assert message.verified.key_id == api_key.key_id
    assert "Deployment md-alpha cannot be scraped" in message.body
    assert "Started: 2026-11-27 10:00:00 UTC" in message.body
    assert "deployment=md-alpha" in message.body
    assert (
        "Dashboard: https://grafana.example.com/d/aqua-vllm/vllm-deployment?var-deployment=md-alpha"
        in message.body
    )
    assert "aqua_proxy_notifications_published_total 1.0" in metrics
    assert ROUTE not in sd and "alerts" not in sd


def test_resolved_notifications_say_so(api_key, topic_api):
    answer, _, _ = post(settings_env(api_key, topic_api), notification("resolved"))
    assert answer.status_code == 200
    [message] = topic_api.messages
    assert message.title == "[RESOLVED] AquaDeploymentDown: md-alpha"
    assert "Resolved: 2026-11-27 10:05:00 UTC" in message.body
    assert "Dashboard:" not in message.body, "no link without GRAFANA_ROOT_URL"


def test_a_client_off_loopback_is_refused_and_nothing_is_published(api_key, topic_api):
    answer, _, _ = post(
        settings_env(api_key, topic_api), notification(), client_address=("10.0.0.7", 5000)
    )
    assert answer.status_code == 403
    assert topic_api.calls == []


def test_a_failed_publish_answers_502_so_alertmanager_retries_and_is_counted(api_key, topic_api):
    topic_api.fail_next(1, 500)
    answer, metrics, _ = post(settings_env(api_key, topic_api), notification())
    assert answer.status_code == 502
    assert "HTTP 500" in answer.text
    assert 'aqua_proxy_notification_failures_total{kind="service_error"} 1.0' in metrics
    assert topic_api.messages == []


def test_a_refused_signature_is_counted_as_refused(api_key, topic_api, tmp_path):
    topic_api.registry = type(topic_api.registry)()  # forget every key: 401 NotAuthenticated
    answer, metrics, _ = post(settings_env(api_key, topic_api), notification())
    assert answer.status_code == 502
    assert 'aqua_proxy_notification_failures_total{kind="refused"} 1.0' in metrics


def test_what_is_not_a_notification_is_400_and_not_published(api_key, topic_api):
    for payload in (b"not json", {"alerts": []}, {"alerts": [{"status": "weird"}]}):
        answer, _, _ = post(settings_env(api_key, topic_api), payload)
        assert answer.status_code == 400, payload
    assert topic_api.calls == []


def test_without_a_topic_there_is_no_route(api_key):
    env = {"OCI_AUTH": "api_key", "OCI_CONFIG_FILE": str(api_key.config_path)}
    settings = load_settings(env)
    app = create_app(settings, build_credentials(settings.proxy.auth))

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as client:
            return await client.post(ROUTE, json=notification())

    assert asyncio.run(go()).status_code == 404


def test_titles_count_firing_alerts_and_list_deployments():
    payload = notification()
    second = dict(
        payload["alerts"][0], labels={**payload["alerts"][0]["labels"], "deployment": "md-beta"}
    )
    payload["alerts"].append(second)
    message = build_message(payload, None)
    assert message.title == "[FIRING:2] AquaDeploymentDown: md-alpha, md-beta"
    assert message.body.count("is FIRING") == 2


def test_long_messages_fit_the_service_limits():
    payload = notification(deployment="d" * 400)
    payload["alerts"][0]["annotations"]["description"] = "x" * (MAX_BODY_BYTES * 2)
    message = build_message(payload, None)
    assert len(message.title) == MAX_TITLE_CHARS
    assert len(message.body.encode()) <= MAX_BODY_BYTES
    assert message.body.endswith("[truncated]")


# --- every token-based auth mode publishes too (the SDK skips its config checks for them) ------


@pytest.fixture
def issuer(registry):
    token_issuer = TokenIssuer()
    token_issuer.register_with(registry)
    return token_issuer


def test_a_session_token_profile_publishes(api_key, topic_api, issuer, tmp_path):
    creds = make_security_token_profile(tmp_path, issuer)
    env = settings_env(api_key, topic_api, OCI_CONFIG_FILE=str(creds.config_path))
    env.update(OCI_AUTH="security_token", OCI_CONFIG_PROFILE=creds.profile)
    answer, _, _ = post(env, notification())
    assert answer.status_code == 200, answer.text
    [message] = topic_api.messages
    assert message.verified.key_id.startswith("ST$")


def test_a_resource_principal_publishes(api_key, topic_api, issuer, tmp_path, monkeypatch):
    creds = make_resource_principal_v22(tmp_path, issuer, mode="file")
    for name, value in creds.env.items():
        monkeypatch.setenv(name, value)  # the SDK's signer reads them from the process
    env = settings_env(api_key, topic_api, **creds.env)
    env.update(OCI_AUTH="resource_principal")
    env.pop("OCI_CONFIG_FILE")
    answer, _, _ = post(env, notification())
    assert answer.status_code == 200, answer.text
    [message] = topic_api.messages
    assert message.verified.key_id == f"ST${creds.token}"
