"""An Alertmanager webhook notification, turned into an OCI Notifications message.

Alertmanager posts one JSON document per notification (webhook payload version 4): the group's
status, its labels, and every alert with its own status, labels, annotations and start/end times.
The topic fans the message out to e-mail, Slack, PagerDuty or SMS subscribers, so the title must
say what happened at a glance (alert, deployment, firing or resolved) and the body must read well
as plain text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

# OCI Notifications limits: a title of at most 255 characters, a message of at most 64 KiB.
MAX_TITLE_CHARS = 255
MAX_BODY_BYTES = 64 * 1024
# The "vLLM deployment" dashboard (grafana/provisioning/dashboards/aqua/vllm-deployment.json).
DASHBOARD_UID = "aqua-vllm"
DASHBOARD_SLUG = "vllm-deployment"
_TRUNCATED = "\n[truncated]"


class PayloadError(ValueError):
    """The request is not an Alertmanager webhook notification."""


@dataclass(frozen=True)
class NotificationMessage:
    title: str
    body: str


def _mapping(value: Any, what: str) -> Mapping[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise PayloadError(f"{what} must be an object of strings")
    return value


def _alerts(payload: Any) -> list[Mapping[str, Any]]:
    if not isinstance(payload, Mapping):
        raise PayloadError("the body must be a JSON object")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise PayloadError("`alerts` must be a non-empty list")
    for alert in alerts:
        if not isinstance(alert, Mapping) or alert.get("status") not in {"firing", "resolved"}:
            raise PayloadError("every alert needs a status of firing or resolved")
        _mapping(alert.get("labels", {}), "labels")
        _mapping(alert.get("annotations", {}), "annotations")
    return alerts


def _shared(alerts: list[Mapping[str, Any]], name: str) -> str | None:
    """The label's value when every alert has the same one."""
    values = {alert.get("labels", {}).get(name) for alert in alerts}
    return values.pop() if len(values) == 1 else None


def _time(raw: Any) -> str | None:
    """RFC 3339 from Alertmanager as `YYYY-MM-DD HH:MM:SS UTC`; None for Go's zero time."""
    if not isinstance(raw, str) or raw.startswith("0001-01-01"):
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return raw
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment.utcoffset() is not None else raw


def dashboard_link(root_url: str, deployment: str | None) -> str:
    link = f"{root_url.rstrip('/')}/d/{DASHBOARD_UID}/{DASHBOARD_SLUG}"
    return f"{link}?var-deployment={quote(deployment)}" if deployment else link


def build_title(alerts: list[Mapping[str, Any]]) -> str:
    """`[FIRING] AquaDeploymentDown: md-x`, `[FIRING:2] ...`, `[RESOLVED] ...`."""
    firing = sum(1 for alert in alerts if alert["status"] == "firing")
    state = "RESOLVED" if firing == 0 else "FIRING" if firing == 1 else f"FIRING:{firing}"
    name = _shared(alerts, "alertname") or "alerts"
    deployment = _shared(alerts, "deployment")
    if deployment is None:
        deployments = sorted(
            {a["labels"]["deployment"] for a in alerts if "deployment" in a.get("labels", {})}
        )
        deployment = ", ".join(deployments) or None
    title = f"[{state}] {name}" + (f": {deployment}" if deployment else "")
    return title[:MAX_TITLE_CHARS]


def _alert_block(alert: Mapping[str, Any], root_url: str | None) -> str:
    labels: Mapping[str, str] = alert.get("labels", {})
    annotations: Mapping[str, str] = alert.get("annotations", {})
    deployment = labels.get("deployment")
    name = labels.get("alertname", "alert")
    where = f" for deployment {deployment}" if deployment else ""
    lines = [f"{name} is {str(alert['status']).upper()}{where}."]
    for key in ("summary", "description"):
        if annotations.get(key):
            lines += ["", annotations[key]]
    lines.append("")
    started = _time(alert.get("startsAt"))
    if started:
        lines.append(f"Started: {started}")
    ended = _time(alert.get("endsAt")) if alert["status"] == "resolved" else None
    if ended:
        lines.append(f"Resolved: {ended}")
    lines.append("Labels: " + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())))
    if root_url:
        lines.append(f"Dashboard: {dashboard_link(root_url, deployment)}")
    return "\n".join(lines)


def _fit(body: str) -> str:
    encoded = body.encode()
    if len(encoded) <= MAX_BODY_BYTES:
        return body
    room = MAX_BODY_BYTES - len(_TRUNCATED.encode())
    return encoded[:room].decode(errors="ignore") + _TRUNCATED


def build_message(payload: Any, grafana_root_url: str | None) -> NotificationMessage:
    """Title and body for one notification. Raises PayloadError for anything else."""
    alerts = _alerts(payload)
    ordered = sorted(alerts, key=lambda alert: alert["status"] != "firing")
    body = "\n\n---\n\n".join(_alert_block(alert, grafana_root_url) for alert in ordered)
    return NotificationMessage(title=build_title(alerts), body=_fit(body))
