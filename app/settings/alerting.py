"""Alerting's settings: Alertmanager, where alerts go (OCI Notifications, Slack, a webhook,
e-mail) and its timing, or a whole Alertmanager configuration file instead."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from app.settings.reader import Secret, _Reader
from app.targets import is_loopback_host

TOPIC_OCID = re.compile(r"^ocid1\.onstopic\.[a-z0-9]+\.[a-z0-9-]*\.(?:[a-z0-9-]*\.)?[a-z0-9]+$")
_SMARTHOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):([0-9]{1,5})", re.ASCII)
_EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+$")


@dataclass(frozen=True)
class EmailReceiver:
    to: tuple[str, ...]
    smarthost: str
    sender: str
    username: str | None
    password: Secret | None
    require_tls: bool


@dataclass(frozen=True)
class AlertingSettings:
    """Alertmanager and where alerts go. No receiver at all is valid: alerts stay visible in
    Grafana and Alertmanager, delivered nowhere."""

    port: int = 9093
    binary: str | None = None
    topic_id: str | None = None
    notifications_endpoint: str | None = None
    slack_webhook_url: Secret | None = None
    webhook_url: Secret | None = None
    webhook_bearer_token: Secret | None = None
    email: EmailReceiver | None = None
    config_file: Path | None = None
    config_text: Secret | None = None
    group_wait: str = "30s"
    group_interval: str = "5m"
    repeat_interval: str = "4h"
    grafana_root_url: str | None = None

    @property
    def receivers(self) -> tuple[str, ...]:
        """Names of the configured receivers, in a fixed order (for messages, never secrets)."""
        names = []
        if self.topic_id:
            names.append("oci-notifications")
        if self.slack_webhook_url:
            names.append("slack")
        if self.webhook_url:
            names.append("webhook")
        if self.email:
            names.append("email")
        return tuple(names)

    def secrets(self) -> tuple[str, ...]:
        """Every secret value, so output of other programs can be scrubbed of them."""
        values = [
            secret.value
            for secret in (
                self.slack_webhook_url,
                self.webhook_url,
                self.webhook_bearer_token,
                self.email.password if self.email else None,
            )
            if secret is not None
        ]
        return tuple(values)


def _https_or_loopback(read: _Reader, name: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and is_loopback_host(parts.hostname or ""):
        return
    # Never echo the URL: webhook URLs carry their credentials in the path.
    read.problems.append(f"{name}: must be an https URL (plain http only on a loopback host)")


def _read_email(read: _Reader) -> EmailReceiver | None:
    to = read.optional("ALERT_EMAIL_TO")
    smarthost = read.optional("SMTP_SMARTHOST")
    sender = read.optional("SMTP_FROM")
    username = read.optional("SMTP_USERNAME")
    password = read.secret("SMTP_PASSWORD")
    require_tls = read.boolean("SMTP_REQUIRE_TLS", True)
    if to is None:
        for name, value in (("SMTP_SMARTHOST", smarthost), ("SMTP_FROM", sender)):
            if value is not None:
                read.problems.append(f"{name}: set ALERT_EMAIL_TO too, or leave it unset")
        return None
    addresses = tuple(part.strip() for part in to.split(",") if part.strip())
    if not addresses or not all(_EMAIL.match(address) for address in addresses):
        read.problems.append("ALERT_EMAIL_TO: give e-mail addresses separated by commas")
    if smarthost is None:
        read.problems.append("ALERT_EMAIL_TO: e-mail needs SMTP_SMARTHOST (host:port)")
    elif not (match := _SMARTHOST.fullmatch(smarthost)) or not 1 <= int(match[1]) <= 65535:
        read.problems.append(f"SMTP_SMARTHOST: {smarthost!r} is not host:port (port 1-65535)")
    if sender is None:
        read.problems.append("ALERT_EMAIL_TO: e-mail needs SMTP_FROM (the sender address)")
    elif not _EMAIL.match(sender):
        read.problems.append(f"SMTP_FROM: {sender!r} is not an e-mail address")
    if password is not None and username is None:
        read.problems.append("SMTP_PASSWORD: set SMTP_USERNAME too")
    return EmailReceiver(addresses, smarthost or "", sender or "", username, password, require_tls)


def read_alerting(read: _Reader, proxy_host: str) -> AlertingSettings:
    """Alertmanager's port, binary, receivers and timing; problems go to `read.problems`."""
    topic = read.optional("OCI_NOTIFICATION_TOPIC_ID")
    if topic is not None and not TOPIC_OCID.match(topic):
        read.problems.append(
            "OCI_NOTIFICATION_TOPIC_ID: not a Notifications topic OCID (ocid1.onstopic.<realm>...)"
        )
    if topic is not None and proxy_host not in {
        "127.0.0.1",
        "0.0.0.0",
        "",
        "::",
        "::1",
        "localhost",
    }:
        read.problems.append(
            "OCI_NOTIFICATION_TOPIC_ID: Alertmanager hands notifications to the proxy on loopback; "
            "PROXY_HOST must be 127.0.0.1 or 0.0.0.0"
        )
    endpoint = read.optional("OCI_NOTIFICATIONS_ENDPOINT")
    if endpoint is not None:
        _https_or_loopback(read, "OCI_NOTIFICATIONS_ENDPOINT", endpoint)
        if topic is None:
            read.problems.append("OCI_NOTIFICATIONS_ENDPOINT: set OCI_NOTIFICATION_TOPIC_ID too")
    slack = read.secret("ALERT_SLACK_WEBHOOK_URL")
    if slack is not None:
        _https_or_loopback(read, "ALERT_SLACK_WEBHOOK_URL", slack.value)
    webhook = read.secret("ALERT_WEBHOOK_URL")
    if webhook is not None:
        _https_or_loopback(read, "ALERT_WEBHOOK_URL", webhook.value)
    bearer = read.secret("ALERT_WEBHOOK_BEARER_TOKEN")
    if bearer is not None and webhook is None:
        read.problems.append("ALERT_WEBHOOK_BEARER_TOKEN: set ALERT_WEBHOOK_URL too")
    email = _read_email(read)
    group_wait, _ = read.duration("ALERT_GROUP_WAIT", "30s")
    group_interval, _ = read.duration("ALERT_GROUP_INTERVAL", "5m")
    repeat_interval, _ = read.duration("ALERT_REPEAT_INTERVAL", "4h")
    root_url = read.optional("GRAFANA_ROOT_URL")
    if root_url is not None and urlsplit(root_url).scheme not in {"http", "https"}:
        read.problems.append(f"GRAFANA_ROOT_URL: {root_url!r} is not an http(s) URL")
    config_file, config_text = _read_alertmanager_config_file(read)
    if config_file is not None:
        generated_only = {
            "ALERT_SLACK_WEBHOOK_URL": slack,
            "ALERT_WEBHOOK_URL": webhook,
            "ALERT_EMAIL_TO": email,
            "ALERT_GROUP_WAIT": read.optional("ALERT_GROUP_WAIT"),
            "ALERT_GROUP_INTERVAL": read.optional("ALERT_GROUP_INTERVAL"),
            "ALERT_REPEAT_INTERVAL": read.optional("ALERT_REPEAT_INTERVAL"),
        }
        for name, value in generated_only.items():
            if value is not None:
                read.problems.append(
                    f"{name}: ALERTMANAGER_CONFIG_FILE replaces the generated configuration; "
                    "configure this receiver or timing in that file instead"
                )
    return AlertingSettings(
        port=read.port("ALERTMANAGER_PORT", 9093),
        binary=read.optional("ALERTMANAGER_BIN"),
        topic_id=topic,
        notifications_endpoint=endpoint.rstrip("/") if endpoint else None,
        slack_webhook_url=slack,
        webhook_url=webhook,
        webhook_bearer_token=bearer,
        email=email,
        config_file=config_file,
        config_text=config_text,
        group_wait=group_wait,
        group_interval=group_interval,
        repeat_interval=repeat_interval,
        grafana_root_url=root_url.rstrip("/") if root_url else None,
    )


def _read_alertmanager_config_file(read: _Reader) -> tuple[Path | None, Secret | None]:
    raw = read.optional("ALERTMANAGER_CONFIG_FILE")
    if raw is None:
        return None, None
    path, text = read.text_file("ALERTMANAGER_CONFIG_FILE", raw)
    return path or Path(raw), Secret(text) if text is not None else None
