"""The two Monitoring API calls, paced and retried: ListMetrics and SummarizeMetricsData.

Blocking (the SDK uses `requests`); the collector runs in the poller's worker thread. The SDK's
own retries and circuit breaker are off: this module retries 429, 5xx and timeouts itself
(exponential backoff with jitter) so every attempt is paced and counted. A `Pacer` keeps all
calls of the process under OCI Monitoring's limit of about 10 calls per second per tenancy.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.discovery.poller import PollError
from app.monitoring.naming import NAMESPACE
from app.oci_clients import CALL_FAILURES, build_sdk_client, call_failure

CALL_RESULTS = ("ok", *CALL_FAILURES, "error")
RETRIED = frozenset({"throttled", "server_error", "timeout", "unreachable"})
# The service refused the credentials: 401 NotAuthenticated, 404 NotAuthorizedOrNotFound.
REFUSED = frozenset({"not_authenticated", "not_authorized"})
LIST_PAGE_LIMIT = 1000
MAX_LIST_PAGES = 100
IAM_HINT = (
    "reading OCI Monitoring needs an IAM policy such as 'allow dynamic-group <group> to read "
    "metrics in compartment <compartment> where target.metrics.namespace="
    "'oci_datascience_modeldeploy''"
)


def iam_hint(compartment_id: str) -> str:
    """The IAM statement that lets the container read the namespace in `compartment_id`."""
    return (
        "reading OCI Monitoring needs an IAM policy such as 'allow dynamic-group <group> to read "
        f"metrics in compartment id {compartment_id} where target.metrics.namespace="
        "'oci_datascience_modeldeploy''"
    )


_HINTS = {
    "throttled": "OCI Monitoring is throttling",
    "server_error": "OCI Monitoring failed",
    "not_authenticated": "OCI Monitoring refused the request signature",
    "not_authorized": IAM_HINT,
    "bad_request": "OCI Monitoring refused the query",
}


class MonitoringError(PollError):
    """A failed Monitoring call; `kind` is one of CALL_RESULTS."""


@dataclass(frozen=True)
class Datapoint:
    timestamp: float  # wall seconds (start of the minute)
    value: float


@dataclass(frozen=True)
class Series:
    """One `MetricData` item: its dimensions and datapoints, oldest first."""

    dimensions: dict[str, str]
    points: tuple[Datapoint, ...]


class Pacer:
    """At most `rate` calls per second across every thread of the process."""

    def __init__(
        self,
        rate: float = 8.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.spacing = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self) -> None:
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.spacing
        if start > now:
            self._sleep(start - now)


def build_client(signer: Any, region: str, endpoint: str | None) -> Any:
    """A MonitoringClient for `region` (or the endpoint override), without SDK retries."""
    import oci

    return build_sdk_client(
        oci.monitoring.MonitoringClient, signer, region, timeout=(5.0, 30.0), endpoint=endpoint
    )


def classify(exc: BaseException, host: str) -> MonitoringError:
    """An SDK/transport exception as a counted kind with a one-line summary (no secrets)."""
    if isinstance(exc, MonitoringError):
        return exc
    kind, summary = call_failure(exc, host)
    return MonitoringError(kind, summary, _HINTS.get(kind, ""))


def _seconds(value: Any) -> float:
    if isinstance(value, datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=UTC)
        return stamp.timestamp()
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


class MonitoringCalls:
    """Makes the calls for one endpoint: paced, retried, counted in `counts[(operation, result)]`.

    `client_factory()` returns the client for the signer in use now.
    """

    def __init__(
        self,
        client_factory: Callable[[], Any],
        *,
        host: str,
        pacer: Pacer,
        counts: Counter[tuple[str, str]],
        counts_lock: threading.Lock,
        attempts: int = 4,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._client_factory = client_factory
        self.host = host
        self._pacer = pacer
        self._counts = counts
        self._counts_lock = counts_lock
        self._attempts = attempts
        self._backoff = backoff
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security

    def _call(self, operation: str, call: Callable[[Any], Any]) -> Any:
        for attempt in range(1, self._attempts + 1):
            self._pacer.wait()
            try:
                result = call(self._client_factory())
            except Exception as exc:
                error = classify(exc, self.host)
                self._count(operation, error.kind)
                if error.kind not in RETRIED or attempt == self._attempts:
                    raise error from None
                delay = self._backoff * 2 ** (attempt - 1)
                self._sleep(delay * self._rng.uniform(0.8, 1.2))
            else:
                self._count(operation, "ok")
                return result
        raise MonitoringError("error", "no attempt made")  # not reached: attempts >= 1

    def _count(self, operation: str, result: str) -> None:
        with self._counts_lock:
            self._counts[(operation, result)] += 1

    def list_dimensions(self, compartment_id: str) -> dict[str, frozenset[str]]:
        """Every metric name of the namespace in the compartment, with its dimension keys."""
        import oci

        details = oci.monitoring.models.ListMetricsDetails(namespace=NAMESPACE)
        found: dict[str, set[str]] = {}
        page: str | None = None
        for _ in range(MAX_LIST_PAGES):
            kwargs: dict[str, Any] = {"limit": LIST_PAGE_LIMIT}
            if page:
                kwargs["page"] = page
            response = self._call(
                "list_metrics",
                lambda client, kw=kwargs: client.list_metrics(compartment_id, details, **kw),
            )
            for metric in response.data or ():
                found.setdefault(metric.name, set()).update((metric.dimensions or {}).keys())
            page = response.headers.get("opc-next-page")
            if not page:
                break
        return {name: frozenset(keys) for name, keys in found.items()}

    def summarize(
        self, compartment_id: str, query: str, start: datetime, end: datetime
    ) -> list[Series]:
        """One SummarizeMetricsData call (retried): the series it returns."""
        import oci

        details = oci.monitoring.models.SummarizeMetricsDataDetails(
            namespace=NAMESPACE, query=query, start_time=start, end_time=end, resolution="1m"
        )
        response = self._call(
            "summarize_metrics_data",
            lambda client: client.summarize_metrics_data(compartment_id, details),
        )
        series = []
        for item in response.data or ():
            points = tuple(
                sorted(
                    (
                        Datapoint(_seconds(p.timestamp), float(p.value))
                        for p in item.aggregated_datapoints or ()
                        if p.value is not None
                    ),
                    key=lambda p: p.timestamp,
                )
            )
            series.append(Series(dict(item.dimensions or {}), points))
        return series
