"""`MonitoringApi`: a loopback stand-in of OCI Monitoring's metric read API.

Serves `POST /20180401/metrics/actions/listMetrics` and
`POST /20180401/metrics/actions/summarizeMetricsData` the way the service does: every request
must carry a valid OCI signature (the independent `cavage` verifier, which for a POST also checks
`content-length`, `content-type` and `x-content-sha256` against the body; else 401
`NotAuthenticated`), `compartmentId` is a required query parameter, and the JSON is the service's
`Metric` / `MetricData` / `AggregatedDatapoint` shape (camelCase), so the real `oci` SDK parses it.

The data is namespace `oci_datascience_modeldeploy` for the deployments a test adds: one stream
per deployment (and instance, status code or network type where the metric has that dimension),
one datapoint per minute, published the way OCI Monitoring publishes it: a minute appears only
`arrival_seconds` after it starts (late), first with a partial value, and is revised to its final
value `final_after_seconds` after it starts. MQL is parsed just enough for what a collector sends:
`Name[1m]{dim = "v"}.groupBy(dimA, dimB).statistic()`.

Tests add and remove deployments, stop a deployment from reporting, deny a compartment (404
`NotAuthorizedOrNotFound`, a missing IAM policy) and throttle (429) for N requests or for a while,
through a thread-safe Python API. Every request is recorded.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from testkit.cavage import KeyRegistry, SignatureError, VerifiedSignature
from testkit.oci_credentials import fake_ocid
from testkit.oci_standin import (
    SignedApiHandler,
    SignedApiServer,
    decode_page,
    encode_page,
    error_body,
)

NAMESPACE = "oci_datascience_modeldeploy"
LIST_PATH = "/20180401/metrics/actions/listMetrics"
SUMMARIZE_PATH = "/20180401/metrics/actions/summarizeMetricsData"
MAX_SERIES = 2000  # per SummarizeMetricsData response, as the service documents
MAX_LIST_LIMIT = 1000
_QUERY = re.compile(
    r"^(?P<name>[A-Za-z][A-Za-z0-9_]*)\[(?P<interval>\d+)m\]"
    r"(?:\{(?P<filter>[^}]*)\})?"
    r"(?:\.groupBy\((?P<group>[^)]*)\))?"
    r"\.(?P<statistic>mean|sum|max|min|count)\(\)$"
)
_FILTER = re.compile(r'^\s*([A-Za-z]+)\s*=\s*"([^"]*)"\s*$')


@dataclass(frozen=True)
class MetricSpec:
    """A metric of the namespace: its name, the dimensions it has besides `resourceId` (with
    their values), whether it is per instance, and a base value its datapoints vary around."""

    name: str
    base: float
    per_instance: bool = False
    variants: tuple[dict[str, str], ...] = ({},)


# What a GPU deployment publishes (the GPU names are this stand-in's guess; the collector must
# find them through ListMetrics, never by name).
GPU_DEPLOYMENT_METRICS = (
    MetricSpec("PredictRequestCount", 120.0),
    MetricSpec(
        "PredictResponse",
        100.0,
        variants=(
            {"statusCode": "200", "statusFamily": "2XX", "result": "Success"},
            {"statusCode": "429", "statusFamily": "4XX", "result": "Failure"},
            {"statusCode": "503", "statusFamily": "5XX", "result": "Failure"},
        ),
    ),
    MetricSpec("PredictLatency", 850.0),
    MetricSpec("PredictBandwidth", 12.0),
    MetricSpec("CpuUtilization", 35.0, per_instance=True),
    MetricSpec("MemoryUtilization", 48.0, per_instance=True),
    MetricSpec(
        "NetworkBytes",
        4.0e6,
        per_instance=True,
        variants=({"networkType": "BytesIn"}, {"networkType": "BytesOut"}),
    ),
    MetricSpec("GpuUtilization", 71.0, per_instance=True),
    MetricSpec("GpuMemoryUtilization", 83.0, per_instance=True),
)


@dataclass(frozen=True)
class Stream:
    """One metric stream: a metric with a full set of dimension values."""

    metric: MetricSpec
    compartment_id: str
    dimensions: tuple[tuple[str, str], ...]

    @property
    def dims(self) -> dict[str, str]:
        return dict(self.dimensions)


@dataclass(frozen=True)
class MonitoredDeployment:
    """A deployment that publishes metrics: its OCID, compartment and instance OCIDs."""

    ocid: str
    compartment_id: str
    instances: tuple[str, ...]
    reporting: bool = True
    seed: int = 0


@dataclass(frozen=True)
class RecordedCall:
    """One request as it arrived and how it was answered."""

    operation: str  # listMetrics | summarizeMetricsData | other
    compartment_id: str | None
    body: dict[str, Any]
    status: int
    verified: VerifiedSignature | None
    error: str | None


@dataclass(frozen=True)
class Query:
    """The parts of an MQL query this stand-in understands."""

    name: str
    interval_minutes: int
    filters: dict[str, str]
    group_by: tuple[str, ...]
    statistic: str


def parse_query(text: str) -> Query | None:
    """Parse `Name[1m]{dim = "v"}.groupBy(a, b).mean()`; None when it is not of that form."""
    match = _QUERY.match(text.strip())
    if match is None:
        return None
    filters: dict[str, str] = {}
    for clause in (match.group("filter") or "").split(","):
        if not clause.strip():
            continue
        pair = _FILTER.match(clause)
        if pair is None:
            return None
        filters[pair.group(1)] = pair.group(2)
    group = tuple(g.strip() for g in (match.group("group") or "").split(",") if g.strip())
    return Query(
        match.group("name"), int(match.group("interval")), filters, group, match.group("statistic")
    )


def _iso(seconds: float) -> str:
    return (
        datetime.fromtimestamp(seconds, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _aggregate(statistic: str, values: list[float]) -> float:
    if statistic == "sum":
        return sum(values)
    if statistic == "max":
        return max(values)
    if statistic == "min":
        return min(values)
    if statistic == "count":
        return float(len(values))
    return sum(values) / len(values)


class MonitoringApi(SignedApiServer[RecordedCall]):
    """The Monitoring stand-in; use as a context manager.

    Point the SDK at it with `MonitoringClient(config, signer=..., service_endpoint=api.endpoint)`.
    `clock` (wall seconds) decides which minutes exist; `arrival_seconds` and
    `final_after_seconds` say when a minute first appears and when it gets its final value.
    """

    def __init__(
        self,
        registry: KeyRegistry,
        *,
        metrics: Iterable[MetricSpec] = GPU_DEPLOYMENT_METRICS,
        clock: Callable[[], float] = time.time,
        arrival_seconds: float = 75.0,
        final_after_seconds: float = 150.0,
        history_minutes: int = 60,
        list_page_size: int = MAX_LIST_LIMIT,
        max_skew_seconds: float = 300,
    ) -> None:
        self.metrics = tuple(metrics)
        self.clock = clock
        self.arrival_seconds = arrival_seconds
        self.final_after_seconds = final_after_seconds
        self.history_minutes = history_minutes
        self.list_page_size = list_page_size
        self._deployments: dict[str, MonitoredDeployment] = {}
        self._throttle_left = 0
        self._throttle_until = 0.0
        super().__init__(registry, _Handler, max_skew_seconds=max_skew_seconds)

    # ---- the deployments ---------------------------------------------------------------------

    def add(
        self,
        *,
        compartment_id: str,
        ocid: str | None = None,
        instances: int = 1,
    ) -> MonitoredDeployment:
        with self._lock:
            seed = len(self._deployments) + 1
            deployment = MonitoredDeployment(
                ocid=ocid or fake_ocid("datasciencemodeldeployment", "iad"),
                compartment_id=compartment_id,
                instances=tuple(
                    fake_ocid("datasciencemodeldeploymentinstance") for _ in range(instances)
                ),
                seed=seed,
            )
            self._deployments[deployment.ocid] = deployment
        return deployment

    def stop_reporting(self, ocid: str) -> None:
        """The deployment publishes nothing any more (deleted): it drops out of every answer."""
        with self._lock:
            self._deployments[ocid] = replace(self._deployments[ocid], reporting=False)

    def remove(self, ocid: str) -> None:
        with self._lock:
            del self._deployments[ocid]

    def streams(self, compartment_id: str | None = None) -> list[Stream]:
        """Every stream of the reporting deployments (of one compartment, if given)."""
        with self._lock:
            deployments = [d for d in self._deployments.values() if d.reporting]
        found: list[Stream] = []
        for deployment in deployments:
            if compartment_id is not None and deployment.compartment_id != compartment_id:
                continue
            for metric in self.metrics:
                instances: tuple[str | None, ...] = (
                    deployment.instances if metric.per_instance else (None,)
                )
                for instance in instances:
                    for variant in metric.variants:
                        dims = {"resourceId": deployment.ocid, **variant}
                        if instance is not None:
                            dims["instanceId"] = instance
                        found.append(
                            Stream(metric, deployment.compartment_id, tuple(sorted(dims.items())))
                        )
        return found

    def final_value(self, stream: Stream, minute: float) -> float:
        """The value a stream's minute ends up with (deterministic, varies by minute)."""
        dims = stream.dims
        deployment = self._deployments.get(dims["resourceId"])
        seed = deployment.seed if deployment else 0
        spread = sum(ord(c) for c in "".join(v for _, v in stream.dimensions)) % 5
        step = int(minute // 60) % 7
        return round(stream.metric.base * (1 + 0.01 * seed) + spread + step, 3)

    def published_value(self, stream: Stream, minute: float, now: float) -> float | None:
        """What the service answers for a minute now: None before it arrives, a partial value
        until it is final, then the final value."""
        if now < minute + self.arrival_seconds:
            return None
        final = self.final_value(stream, minute)
        return final if now >= minute + self.final_after_seconds else round(final / 2, 3)

    def complete_minute(self, settle_seconds: float, now: float | None = None) -> float:
        """Start of the newest minute at least `settle_seconds` old (what a collector exposes)."""
        at = self.clock() if now is None else now
        return float(int((at - settle_seconds) // 60) * 60)

    # ---- faults ------------------------------------------------------------------------------

    def throttle(self, *, times: int = 0, seconds: float = 0.0) -> None:
        """Answer 429 to the next `times` requests, and to every request for `seconds`."""
        with self._lock:
            self._throttle_left = times
            self._throttle_until = time.monotonic() + seconds if seconds else 0.0

    # ---- internals used by the handler -------------------------------------------------------

    def _throttled(self) -> bool:
        with self._lock:
            if self._throttle_left > 0:
                self._throttle_left -= 1
                return True
            return time.monotonic() < self._throttle_until

    def list_metrics(self, compartment_id: str, details: dict[str, Any]) -> list[dict[str, Any]]:
        """The `Metric` JSON objects ListMetrics answers (before paging)."""
        rows = [
            s
            for s in self.streams(compartment_id)
            if details.get("namespace") in (None, NAMESPACE)
            and details.get("name") in (None, s.metric.name)
            and all(s.dims.get(k) == v for k, v in (details.get("dimensionFilters") or {}).items())
        ]
        group_by = details.get("groupBy") or []
        metrics: list[dict[str, Any]] = []
        seen: set[tuple[str, ...]] = set()
        for stream in rows:
            item = {
                "name": stream.metric.name,
                "namespace": NAMESPACE,
                "resourceGroup": None,
                "compartmentId": compartment_id,
                "dimensions": stream.dims,
            }
            if group_by:
                item = {k: (v if k in group_by else None) for k, v in item.items()}
                item["dimensions"] = {}
                key = tuple(str(item[k]) for k in group_by if k in item)
                if key in seen:
                    continue
                seen.add(key)
            metrics.append(item)
        metrics.sort(key=lambda m: (str(m["name"]), json.dumps(m["dimensions"], sort_keys=True)))
        return metrics

    def summarize(
        self, compartment_id: str, query: Query, start: float, end: float
    ) -> list[dict[str, Any]] | str:
        """The `MetricData` JSON objects SummarizeMetricsData answers, or a 400 message."""
        now = self.clock()
        streams = [
            s
            for s in self.streams(compartment_id)
            if s.metric.name == query.name
            and all(s.dims.get(k) == v for k, v in query.filters.items())
        ]
        groups: dict[tuple[tuple[str, str], ...], list[Stream]] = {}
        for stream in streams:
            key = tuple((k, stream.dims.get(k, "")) for k in query.group_by)
            groups.setdefault(key, []).append(stream)
        if len(groups) > MAX_SERIES:
            return f"query returns {len(groups)} series, more than {MAX_SERIES}"
        first = max(int(start // 60) * 60, int((now // 60) - self.history_minutes) * 60)
        answer: list[dict[str, Any]] = []
        for key, members in sorted(groups.items()):
            points = []
            minute = float(first)
            while minute < end:
                if minute >= start:
                    values = [
                        v
                        for s in members
                        if (v := self.published_value(s, minute, now)) is not None
                    ]
                    if values:
                        points.append(
                            {
                                "timestamp": _iso(minute),
                                "value": _aggregate(query.statistic, values),
                            }
                        )
                minute += 60 * query.interval_minutes
            if not points:
                continue
            answer.append(
                {
                    "namespace": NAMESPACE,
                    "resourceGroup": None,
                    "compartmentId": compartment_id,
                    "name": query.name,
                    "dimensions": dict(key),
                    "metadata": {"unit": "", "displayName": query.name},
                    "resolution": "1m",
                    "aggregatedDatapoints": points,
                }
            )
        return answer


class _Handler(SignedApiHandler):
    owner: MonitoringApi

    def do_POST(self) -> None:
        self._serve()

    do_GET = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_POST

    def _serve(self) -> None:
        api = self.owner
        raw = self.read_body()
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        compartment = (query.get("compartmentId") or [None])[-1]
        operation = {LIST_PATH: "listMetrics", SUMMARIZE_PATH: "summarizeMetricsData"}.get(
            parts.path, "other"
        )
        call = {"operation": operation, "compartment_id": compartment, "body": {}}
        try:
            verified = self.verify_signature(raw)
        except SignatureError as exc:
            self._answer(call, 401, None, None, exc.reason)
            return
        if operation == "other" or self.command != "POST":
            self._answer(call, 404, None, verified, "unknown method or path")
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._answer(call, 400, None, verified, "body is not JSON")
            return
        call["body"] = body if isinstance(body, dict) else {}
        if not compartment:
            self._answer(call, 400, None, verified, "compartmentId missing")
            return
        if api._throttled():
            self._answer(call, 429, None, verified, "throttled")
            return
        if api._is_denied(compartment):
            self._answer(call, 404, None, verified, "compartment not authorized")
            return
        if operation == "listMetrics":
            self._list(call, query, verified)
        else:
            self._summarize(call, verified)

    def _list(self, call: dict[str, Any], query: dict[str, list[str]], verified: Any) -> None:
        api = self.owner
        raw_limit = (query.get("limit") or [None])[-1]
        if raw_limit is not None and (not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 1000):
            self._answer(call, 400, None, verified, "limit must be 1..1000")
            return
        limit = min(int(raw_limit) if raw_limit else api.list_page_size, api.list_page_size)
        offset = 0
        token = (query.get("page") or [None])[-1]
        if token is not None:
            decoded = decode_page(token)
            if decoded is None:
                self._answer(call, 400, None, verified, "invalid page token")
                return
            offset = decoded
        rows = api.list_metrics(call["compartment_id"], call["body"])
        headers = (
            {"opc-next-page": encode_page(offset + limit)} if offset + limit < len(rows) else {}
        )
        self._answer(call, 200, rows[offset : offset + limit], verified, None, headers)

    def _summarize(self, call: dict[str, Any], verified: Any) -> None:
        api = self.owner
        body = call["body"]
        if body.get("namespace") != NAMESPACE:
            self._answer(call, 200, [], verified, None)
            return
        parsed = parse_query(str(body.get("query") or ""))
        start, end = _parse_time(body.get("startTime")), _parse_time(body.get("endTime"))
        if parsed is None or start is None or end is None or start >= end:
            self._answer(call, 400, None, verified, "query or time range not understood")
            return
        if body.get("resolution") not in (None, "1m"):
            self._answer(call, 400, None, verified, "only 1m resolution is served")
            return
        answer = api.summarize(call["compartment_id"], parsed, start, end)
        if isinstance(answer, str):
            self._answer(call, 400, None, verified, answer)
            return
        self._answer(call, 200, answer, verified, None)

    def _answer(
        self,
        call: dict[str, Any],
        status: int,
        payload: Any,
        verified: Any,
        error: str | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.owner._record(RecordedCall(status=status, verified=verified, error=error, **call))
        if status != 200:
            payload = error_body(status, error or "")
        self.send_json(status, payload, headers)
