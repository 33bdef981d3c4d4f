"""One collection round: every metric of every place in play, summarized, reduced to gauges.

Per place (region, compartment): ListMetrics finds the metric names and their dimensions (cached,
refreshed every `catalogue_every` rounds), then ONE SummarizeMetricsData call per metric name
covers every deployment there, grouped by `resourceId` (and instance, status, network type where
the metric has them), over the last `window` seconds at 1-minute resolution. The call count grows
with metrics and places, never with deployments.

OCI Monitoring publishes a minute late and may revise it, so each series exposes its newest
datapoint at least `settle` seconds old (complete), and a series whose newest datapoint is older
than `stale` seconds is dropped (a removed deployment goes stale in Prometheus). A failed call
keeps the last good answer for that metric (still subject to `stale`). A round in which every
call failed raises the failure, so the poller backs off and logs it once.

Refused credentials (HTTP 401 NotAuthenticated, or 404 NotAuthorizedOrNotFound: no `read metrics`
policy in the compartment) are a state of their own, `refused`. With `auto_off`
(OCI_MONITORING=auto), when the first round that reaches the API is refused in every call, the
collector switches itself off for good (`switched_off`, one WARNING naming the policy; later
rounds make no call). Otherwise a move into or out of the refused state is logged once: ERROR with
`strict` (OCI_MONITORING=true), else WARNING; back to INFO when the policy works again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from app.monitoring.api import (
    REFUSED,
    MonitoringCalls,
    MonitoringError,
    Pacer,
    Series,
    build_client,
    iam_hint,
)
from app.monitoring.naming import LABELLED_DIMENSIONS, RESOURCE_DIMENSION, GaugeShape, shape_of
from app.monitoring.scope import Place, Scope

log = logging.getLogger(__name__)

SETTLE_SECONDS = 180.0
STALE_SECONDS = 360.0
WINDOW_SECONDS = 600.0
CATALOGUE_EVERY = 10


@dataclass(frozen=True)
class Sample:
    """One exposed gauge value; `timestamp` is its datapoint's minute (not exposed)."""

    gauge: str
    help: str
    labels: tuple[tuple[str, str], ...]
    value: float
    timestamp: float


@dataclass(frozen=True)
class Snapshot:
    samples: tuple[Sample, ...]
    collected_at: float
    newest_datapoint: float | None


class MonitoringCollector:
    """Callable: one round (blocking) returning a `Snapshot`; run it with a `Poller`.

    `scope_provider()` says which deployments are in play; `signer_provider()` returns the SDK
    signer in use now. `endpoint` overrides every region's endpoint (OCI_MONITORING_ENDPOINT).
    """

    def __init__(
        self,
        scope_provider: Callable[[], Scope],
        signer_provider: Callable[[], Any],
        *,
        endpoint: str | None = None,
        strict: bool = False,
        auto_off: bool = False,
        pacer: Pacer | None = None,
        settle: float = SETTLE_SECONDS,
        stale: float = STALE_SECONDS,
        window: float = WINDOW_SECONDS,
        catalogue_every: int = CATALOGUE_EVERY,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        client_factory: Callable[[Any, str, str | None], Any] = build_client,
    ) -> None:
        self._scope_provider = scope_provider
        self._signer_provider = signer_provider
        self.endpoint = endpoint
        self.strict = strict
        self.auto_off = auto_off
        self._pacer = pacer or Pacer()
        self.settle, self.stale, self.window = settle, stale, window
        self.catalogue_every = catalogue_every
        self._clock = clock
        self._sleep = sleep
        self._client_factory = client_factory
        self.counts: Counter[tuple[str, str]] = Counter()
        self.counts_lock = threading.Lock()
        self._clients: dict[str, tuple[Any, Any]] = {}
        self._catalogues: dict[Place, tuple[dict[str, frozenset[str]], int]] = {}
        self._last_good: dict[tuple[Place, str], tuple[GaugeShape, list[Series]]] = {}
        self._round = 0
        self._told: set[str] = set()
        self._answered = False  # a round has reached the API (answered or refused)
        self.refused: dict[str, MonitoringError] = {}  # compartment -> refusal, latest round
        self.switched_off: MonitoringError | None = None  # auto, refused on the first round

    # ---- clients -----------------------------------------------------------------------------

    def _host(self, region: str) -> str:
        if self.endpoint:
            return urlsplit(self.endpoint).netloc or self.endpoint
        return f"telemetry.{region}.oraclecloud.com"

    def _client(self, region: str) -> Any:
        signer = self._signer_provider()
        cached = self._clients.get(region)
        if cached is None or cached[0] is not signer:
            cached = (signer, self._client_factory(signer, region, self.endpoint))
            self._clients[region] = cached
        return cached[1]

    def _calls(self, region: str) -> MonitoringCalls:
        return MonitoringCalls(
            lambda: self._client(region),
            host=self._host(region),
            pacer=self._pacer,
            counts=self.counts,
            counts_lock=self.counts_lock,
            sleep=self._sleep,
        )

    # ---- one round ---------------------------------------------------------------------------

    def _tell_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._told:
            self._told.add(key)
            log.warning(message, *args)

    def __call__(self) -> Snapshot:
        if self.switched_off is not None:
            return Snapshot((), self._clock(), None)
        self._round += 1
        scope = self._scope_provider()
        for watched in scope.unplaced:
            self._tell_once(
                f"unplaced:{watched.ocid}",
                "oci-monitoring: not reading %s: its compartment is unknown "
                "(set OCI_MONITORING_COMPARTMENT_ID)",
                watched.name,
            )
        now = self._clock()
        end = datetime.fromtimestamp(now, UTC)
        start = datetime.fromtimestamp(now - self.window, UTC)
        ok_before = self._ok_calls()
        failures: list[MonitoringError] = []
        refused: dict[str, MonitoringError] = {}
        undecided: set[str] = set()  # compartments whose calls failed otherwise (429, 5xx...)
        for place in scope.places:
            region = place.region or ("" if self.endpoint else None)
            if region is None:
                self._tell_once(
                    f"region:{place.compartment_id}",
                    "oci-monitoring: no region known for the deployments of %s "
                    "(set OCI_MONITORING_ENDPOINT or use model deployment URLs)",
                    place.compartment_id,
                )
                continue
            # With the endpoint override the region only fills the SDK's config.
            calls = self._calls(region or "us-ashburn-1")
            try:
                catalogue = self._catalogue(place, calls)
            except MonitoringError as error:
                failures.append(error)
                self._sort_failure(place, error, refused, undecided)
                catalogue = self._catalogues.get(place, ({}, 0))[0]
            for name, dimensions in sorted(catalogue.items()):
                if RESOURCE_DIMENSION not in dimensions:
                    continue
                shape = shape_of(name)
                try:
                    series = calls.summarize(
                        place.compartment_id, shape.query(dimensions), start, end
                    )
                except MonitoringError as error:
                    failures.append(error)
                    self._sort_failure(place, error, refused, undecided)
                    continue
                self._last_good[(place, name)] = (shape, series)
        all_failed = bool(failures) and self._ok_calls() == ok_before
        reached = bool(failures) or self._ok_calls() > ok_before
        first_answer = reached and not self._answered
        self._answered = self._answered or reached
        if (
            self.auto_off
            and first_answer
            and all_failed
            and all(f.kind in REFUSED for f in failures)
        ):
            self._switch_off(refused)
            return Snapshot((), now, None)
        if reached:
            # A compartment whose calls failed for another reason keeps its previous state.
            carried = {c: e for c, e in self.refused.items() if c in undecided - set(refused)}
            self._note_refusals({**carried, **refused})
        if all_failed:
            raise failures[0]
        return self._snapshot(scope, now)

    def _ok_calls(self) -> int:
        with self.counts_lock:
            return sum(n for (_, result), n in self.counts.items() if result == "ok")

    def _catalogue(self, place: Place, calls: MonitoringCalls) -> dict[str, frozenset[str]]:
        cached = self._catalogues.get(place)
        if cached is not None and self._round - cached[1] < self.catalogue_every and cached[0]:
            return cached[0]
        catalogue = calls.list_dimensions(place.compartment_id)
        self._catalogues[place] = (catalogue, self._round)
        return catalogue

    @staticmethod
    def _sort_failure(
        place: Place,
        error: MonitoringError,
        refused: dict[str, MonitoringError],
        undecided: set[str],
    ) -> None:
        if error.kind in REFUSED:
            refused.setdefault(place.compartment_id, error)
        else:
            undecided.add(place.compartment_id)

    def _switch_off(self, refused: dict[str, MonitoringError]) -> None:
        self.refused = dict(refused)
        compartment, error = sorted(refused.items())[0]
        self.switched_off = error
        log.warning(
            "oci-monitoring: off: OCI Monitoring refused the credentials on the first round "
            "(%s in %d compartment(s), e.g. %s); %s; restart after granting it",
            error.summary,
            len(refused),
            compartment,
            iam_hint(compartment),
        )

    def _note_refusals(self, refused: dict[str, MonitoringError]) -> None:
        """Log a move into (or between sets of) refused compartments, and out of it, once."""
        before, self.refused = set(self.refused), dict(refused)
        if set(refused) == before:
            return
        if not refused:
            log.info("oci-monitoring: the credentials can read metrics again")
            return
        compartment, error = sorted(refused.items())[0]
        if self.strict:
            log.error(
                "oci-monitoring: OCI_MONITORING=true but the credentials cannot read metrics "
                "(%s in %d compartment(s), e.g. %s); %s; retrying",
                error.summary,
                len(refused),
                compartment,
                iam_hint(compartment),
            )
        else:
            log.warning(
                "oci-monitoring: the credentials cannot read metrics (%s in %d compartment(s), "
                "e.g. %s); %s; retrying",
                error.summary,
                len(refused),
                compartment,
                iam_hint(compartment),
            )

    def _snapshot(self, scope: Scope, now: float) -> Snapshot:
        best: dict[tuple[str, tuple[tuple[str, str], ...]], Sample] = {}
        for (place, _), (shape, series_list) in self._last_good.items():
            members = {w.ocid: w for w in scope.places.get(place, ())}
            for series in series_list:
                watched = members.get(str(series.dimensions.get(RESOURCE_DIMENSION, "")).lower())
                complete = [p for p in series.points if p.timestamp <= now - self.settle]
                if watched is None or not complete:
                    continue
                point = complete[-1]
                if point.timestamp < now - self.stale:
                    continue
                labels = [("deployment", watched.name), ("deployment_ocid", watched.ocid)]
                labels += [
                    (label, str(series.dimensions[dim]))
                    for dim, label in LABELLED_DIMENSIONS.items()
                    if dim in series.dimensions
                ]
                sample = Sample(
                    shape.gauge,
                    f"OCI Monitoring {shape.oci_name} ({shape.statistic} per minute, "
                    f"{shape.unit}), newest complete minute",
                    tuple(labels),
                    point.value * shape.scale,
                    point.timestamp,
                )
                key = (sample.gauge, sample.labels)
                if key not in best or best[key].timestamp < sample.timestamp:
                    best[key] = sample
        samples = tuple(sorted(best.values(), key=lambda s: (s.gauge, s.labels)))
        newest = max((s.timestamp for s in samples), default=None)
        return Snapshot(samples, now, newest)
