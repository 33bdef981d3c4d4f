"""The scrape failure vocabulary: what can go wrong, the status it answers with, and the one-line
body that names the target and hints at the fix. Kept apart from the forwarder so every failure
is worded in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class FailureKind(StrEnum):
    TIMEOUT = "timeout"
    CONNECT = "connect"
    SIGNATURE_REFUSED = "signature_refused"
    OVERSIZED = "oversized"
    UPSTREAM_STATUS = "upstream_status"
    PROTOCOL = "protocol"
    BUSY = "busy"


_STATUS_FOR_KIND = {FailureKind.TIMEOUT: 504, FailureKind.BUSY: 503}


@dataclass(frozen=True)
class ScrapeOutcome:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    failure: FailureKind | None = None
    upstream_status: int | None = None


def _hint(kind: FailureKind, upstream_status: int | None, settings_limit: str) -> str:
    if kind is FailureKind.SIGNATURE_REFUSED:
        return (
            "OCI refused the request: check that the URL is the deployment's model_deployment_url "
            "and that a policy allows {DATA_SCIENCE_MODEL_DEPLOYMENT_PREDICT} for this principal"
        )
    if kind is FailureKind.TIMEOUT:
        return (
            f"no complete answer within {settings_limit}; check the deployment, "
            "or raise SCRAPE_TIMEOUT and UPSTREAM_TIMEOUT_SECONDS"
        )
    if kind is FailureKind.CONNECT:
        return "cannot connect: check DNS, egress (NAT or service gateway) and the URL's host"
    if kind is FailureKind.OVERSIZED:
        return f"the response is larger than {settings_limit}"
    if kind is FailureKind.PROTOCOL:
        return "the upstream broke the HTTP exchange (connection reset or invalid response)"
    if kind is FailureKind.BUSY:
        return (
            f"{settings_limit} scrapes of this target already in flight (MAX_INFLIGHT_PER_TARGET)"
        )
    if upstream_status == 429:
        return "rate limited: predict endpoints share a per-tenancy limit; raise SCRAPE_INTERVAL"
    if upstream_status is not None and upstream_status >= 500:
        return "the deployment answered with a server error; is the model server healthy?"
    return "the deployment did not answer with metrics"


def failure_outcome(
    target_name: str, kind: FailureKind, *, upstream_status: int | None = None, limit: str = ""
) -> ScrapeOutcome:
    """The answer for a failed scrape: its status, a one-line body with a hint, and the kind."""
    what = f"upstream answered {upstream_status}" if upstream_status is not None else kind.value
    if kind is FailureKind.SIGNATURE_REFUSED and upstream_status == 404:
        what = "upstream answered 404 NotAuthorizedOrNotFound"
    line = f"aqua-metrics: target {target_name}: {what}; {_hint(kind, upstream_status, limit)}\n"
    return ScrapeOutcome(
        status=_STATUS_FOR_KIND.get(kind, 502),
        body=line.encode(),
        headers={"content-type": "text/plain; charset=utf-8"},
        failure=kind,
        upstream_status=upstream_status,
    )
