"""`aqua-metrics test-alert`: one test notification through every configured receiver.

Like Grafana's "test contact point", but through the running Alertmanager, so what is tested is
what a real alert would go through. A test alert with a label of its own (`deployment:
test-alert-<id>`, so it forms a new group) is posted to Alertmanager's API v2; Alertmanager sends
it after the group wait. Outcomes are read from Alertmanager's own per-integration counters
(`alertmanager_notification_requests_total` and `..._failed_total`) and, for the OCI topic, from
the proxy's (`aqua_proxy_notifications_published_total`, `aqua_proxy_notification_failures_total`),
which tell the relay apart from a user webhook. The alert is resolved at the end, so a resolved
notification follows within the group interval.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from app.settings import Settings, parse_duration

TEST_ALERT_NAME = "AquaMetricsTestAlert"
EXTRA_WAIT_SECONDS = 60.0
POLL_SECONDS = 0.5
HTTP_TIMEOUT_SECONDS = 5.0

Sample = dict[str, float]


@dataclass(frozen=True)
class Outcome:
    integration: str
    ok: bool
    detail: str


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_SECONDS) as response:  # noqa: S310
        return str(response.read().decode())


def _post_json(url: str, payload: Any) -> None:
    request = urllib.request.Request(  # noqa: S310 (loopback URL built from settings)
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS):  # noqa: S310
        return


def counters(text: str, metric: str, label: str | None = None) -> Sample:
    """Sum of `metric` samples in an exposition, per value of `label` ("" without one)."""
    found: Sample = {}
    for line in text.splitlines():
        if not line.startswith(metric) or line.startswith("#"):
            continue
        if line.split("{", 1)[0].split(" ", 1)[0] != metric:
            continue
        key = ""
        if label is not None and "{" in line:
            labels = line.split("{", 1)[1].rsplit("}", 1)[0]
            for pair in labels.split(","):
                k, _, v = pair.partition("=")
                if k.strip() == label:
                    key = v.strip().strip('"')
        value = float(line.rsplit(" ", 1)[1])
        found[key] = found.get(key, 0.0) + value
    return found


def integrations(config_text: str) -> Counter[str]:
    """How many configurations of each integration type (webhook, slack, email...) the
    Alertmanager configuration holds, across its receivers."""
    config = yaml.safe_load(config_text) or {}
    kinds: Counter[str] = Counter()
    for receiver in config.get("receivers") or []:
        for key, items in receiver.items():
            if key.endswith("_configs") and isinstance(items, list):
                kinds[key.removesuffix("_configs")] += len(items)
    return kinds


def _test_alert(test_id: str, starts: datetime, ends: datetime) -> list[dict[str, Any]]:
    return [
        {
            "labels": {
                "alertname": TEST_ALERT_NAME,
                "deployment": f"test-alert-{test_id}",
                "severity": "info",
            },
            "annotations": {
                "summary": "Test notification from aqua-metrics test-alert",
                "description": "Sent by `aqua-metrics test-alert` to check that alerts reach "
                "this receiver. Nothing is wrong with any deployment.",
            },
            "startsAt": starts.isoformat(),
            "endsAt": ends.isoformat(),
        }
    ]


class _Probe:
    """Reads the counters that tell each integration's outcome."""

    def __init__(self, settings: Settings) -> None:
        self.alertmanager = f"http://127.0.0.1:{settings.alerting.port}"
        self.proxy = (
            f"http://{settings.proxy.advertised_address}" if settings.alerting.topic_id else None
        )

    def read(self) -> tuple[Sample, Sample, Sample, Sample]:
        am = _get(f"{self.alertmanager}/metrics")
        attempts = counters(am, "alertmanager_notification_requests_total", "integration")
        failed = counters(am, "alertmanager_notification_requests_failed_total", "integration")
        published: Sample = {}
        relay_failed: Sample = {}
        if self.proxy is not None:
            proxy = _get(f"{self.proxy}/metrics")
            published = counters(proxy, "aqua_proxy_notifications_published_total")
            relay_failed = counters(proxy, "aqua_proxy_notification_failures_total", "kind")
        return attempts, failed, published, relay_failed


def _delta(after: Sample, before: Sample) -> Sample:
    return {key: after.get(key, 0.0) - before.get(key, 0.0) for key in set(after) | set(before)}


def judge(
    expected: Counter[str],
    attempts: Sample,
    failed: Sample,
    published: float,
    relay_failures: Sample,
    relay: bool,
) -> list[Outcome] | None:
    """Outcomes once every integration has answered (or failed once), else None (keep waiting)."""
    outcomes: list[Outcome] = []
    relay_failed = sum(relay_failures.values())
    relay_done = published + relay_failed
    for kind, count in sorted(expected.items()):
        tried, failures = attempts.get(kind, 0.0), failed.get(kind, 0.0)
        if kind == "webhook" and relay:
            if relay_done < 1:
                return None
            if published >= 1:
                outcomes.append(Outcome("oci-notifications", True, "published to the topic"))
            else:
                kinds = ", ".join(sorted(k for k, v in relay_failures.items() if v > 0))
                outcomes.append(
                    Outcome("oci-notifications", False, f"the topic did not take it ({kinds})")
                )
            # The relay is one of Alertmanager's webhooks: what is left is the user's webhook.
            count -= 1
            tried -= relay_done
            failures -= relay_failed
            if count == 0:
                continue
        if failures > 0:
            outcomes.append(
                Outcome(kind, False, "failed; Alertmanager keeps retrying (its log says why)")
            )
        elif tried >= count:
            outcomes.append(Outcome(kind, True, "accepted the notification"))
        else:
            return None
    return outcomes


def run_test_alert(
    settings: Settings,
    *,
    out: Callable[[str], None] = print,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Post the test alert, wait for every integration's outcome, print one line each."""
    from app.stack.runtime import render_alertmanager_text

    alerting = settings.alerting
    config_text = render_alertmanager_text(settings)
    expected = integrations(config_text)
    probe = _Probe(settings)
    try:
        _get(f"{probe.alertmanager}/-/ready")
        before = probe.read()
    except (urllib.error.URLError, OSError) as exc:
        print(
            f"aqua-metrics: Alertmanager at {probe.alertmanager} (or the proxy) does not answer "
            f"({type(exc).__name__}); is the stack running with the same settings?",
            file=sys.stderr,
        )
        return 1
    if not expected:
        out("no receiver is configured: alerts are visible in Grafana and Alertmanager only")
        return 1
    route = (yaml.safe_load(config_text) or {}).get("route") or {}
    group_wait = parse_duration(str(route.get("group_wait", "30s"))) or 30.0
    test_id = uuid.uuid4().hex[:8]
    starts = datetime.now(UTC)
    alerts_url = f"{probe.alertmanager}/api/v2/alerts"
    try:
        _post_json(alerts_url, _test_alert(test_id, starts, starts + timedelta(minutes=10)))
    except (urllib.error.URLError, OSError) as exc:
        print(f"aqua-metrics: Alertmanager refused the test alert ({exc})", file=sys.stderr)
        return 1
    out(
        f"sent test alert {TEST_ALERT_NAME} (deployment=test-alert-{test_id}) to Alertmanager; "
        f"it notifies after the group wait ({route.get('group_wait', '30s')})"
    )
    deadline = clock() + group_wait + EXTRA_WAIT_SECONDS
    outcomes: list[Outcome] | None = None
    while clock() < deadline:
        attempts, failed, published, relay_failed = probe.read()
        outcomes = judge(
            expected,
            _delta(attempts, before[0]),
            _delta(failed, before[1]),
            sum(_delta(published, before[2]).values()),
            _delta(relay_failed, before[3]),
            relay=bool(alerting.topic_id) and alerting.config_file is None,
        )
        if outcomes is not None:
            break
        time.sleep(POLL_SECONDS)
    resolved = True
    try:  # resolve it: it is a test, not a problem to keep showing
        _post_json(alerts_url, _test_alert(test_id, starts, max(datetime.now(UTC), starts)))
    except (urllib.error.URLError, OSError):
        resolved = False
    if outcomes is None:
        out(f"no outcome within {group_wait + EXTRA_WAIT_SECONDS:.0f}s; see Alertmanager's log")
        return 1
    for outcome in outcomes:
        out(f"{outcome.integration}: {'OK' if outcome.ok else 'FAILED'} ({outcome.detail})")
    if resolved:
        out("the test alert is resolved now; a resolved notification follows")
    return 0 if all(outcome.ok for outcome in outcomes) else 1
