"""The Alertmanager configuration, rendered from the settings.

One receiver, `aqua-metrics`, holds every configured integration (OCI Notifications through the
proxy's loopback route, Slack, a webhook, e-mail), so each notification goes to all of them; with
none configured the receiver is empty and alerts stay visible in Grafana and Alertmanager only.
Notifications are grouped per deployment and alert name; resolved ones are sent too. While a
deployment is down, the other per-deployment alerts about it are inhibited: they describe
symptoms of missing data, not new problems.
"""

from __future__ import annotations

from typing import Any

from app.settings import AlertingSettings

RECEIVER = "aqua-metrics"
OCI_NOTIFICATIONS_PATH = "/alerts/oci-notifications"
GROUP_BY = ("deployment", "alertname")
DOWN_ALERT = "AquaDeploymentDown"
# The cause of a deployment being down, not a symptom of it: never inhibited by the down alert.
CAUSE_ALERTS = ("AquaProxySignatureRefused",)


def oci_notifications_url(proxy_address: str) -> str:
    """Where Alertmanager hands notifications for the OCI topic to the proxy (loopback)."""
    return f"http://{proxy_address}{OCI_NOTIFICATIONS_PATH}"


def _receiver(alerting: AlertingSettings, proxy_address: str) -> dict[str, Any]:
    receiver: dict[str, Any] = {"name": RECEIVER}
    webhooks: list[dict[str, Any]] = []
    if alerting.topic_id:
        webhooks.append({"url": oci_notifications_url(proxy_address), "send_resolved": True})
    if alerting.webhook_url is not None:
        webhook: dict[str, Any] = {"url": alerting.webhook_url.value, "send_resolved": True}
        if alerting.webhook_bearer_token is not None:
            webhook["http_config"] = {
                "authorization": {
                    "type": "Bearer",
                    "credentials": alerting.webhook_bearer_token.value,
                }
            }
        webhooks.append(webhook)
    if webhooks:
        receiver["webhook_configs"] = webhooks
    if alerting.slack_webhook_url is not None:
        receiver["slack_configs"] = [
            {"api_url": alerting.slack_webhook_url.value, "send_resolved": True}
        ]
    email = alerting.email
    if email is not None:
        config: dict[str, Any] = {
            "to": ", ".join(email.to),
            "from": email.sender,
            "smarthost": email.smarthost,
            "require_tls": email.require_tls,
            "send_resolved": True,
        }
        if email.username is not None:
            config["auth_username"] = email.username
        if email.password is not None:
            config["auth_password"] = email.password.value
        receiver["email_configs"] = [config]
    return receiver


def inhibit_rules() -> list[dict[str, Any]]:
    """While a deployment is down, its other alerts are muted (same `deployment` label)."""
    targets = [f'alertname!="{name}"' for name in (DOWN_ALERT, *CAUSE_ALERTS)]
    return [
        {
            "source_matchers": [f'alertname="{DOWN_ALERT}"'],
            "target_matchers": targets,
            "equal": ["deployment"],
        }
    ]


def render_alertmanager_config(alerting: AlertingSettings, proxy_address: str) -> dict[str, Any]:
    """The generated configuration (when no ALERTMANAGER_CONFIG_FILE replaces it)."""
    return {
        "route": {
            "receiver": RECEIVER,
            "group_by": list(GROUP_BY),
            "group_wait": alerting.group_wait,
            "group_interval": alerting.group_interval,
            "repeat_interval": alerting.repeat_interval,
        },
        "inhibit_rules": inhibit_rules(),
        "receivers": [_receiver(alerting, proxy_address)],
    }
