"""One scrape of one deployment: a GET of its configured URL, answered with honest headers.

Each target has its own client (see `app.upstreams`, created on first use): a signing one over the network, or the demo
transport; the forwarder treats them alike. The upstream URL always comes from the configuration,
never from the inbound request. Only the headers a scrape needs go upstream (Accept,
Accept-Encoding), and only Content-Type and Content-Encoding come back, describing the exact bytes
relayed. Every failure is mapped, in one place (`app.scrape_failures`), to a status, a counted
kind and a one-line body with a hint.

A deployment may run several replicas behind its one endpoint, each answering with its own
counters. Every scrape therefore goes through `app.replicas.gather`: a single replica costs one
fetch and is relayed byte for byte; several are fetched until each has answered (within the
deadline and a cap) and served as one exposition, each replica's series labelled `replica`.
SCRAPE_BODY_SIZE_LIMIT bounds each page once unpacked, the merged answer and the replica pages
kept between scrapes alike; past it the scrape fails as `oversized`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from typing import Any

import httpx

from app.proxy_metrics import ProxyMetrics
from app.refusal import REFUSAL_BODY_PREFIX_BYTES, is_refused
from app.replicas.gather import (
    MAX_FETCH_CAP,
    FetchedPage,
    FetchFailed,
    Gathered,
    MergedTooLarge,
    StopReason,
    gather,
    suggested_fetch_cap,
)
from app.replicas.tracker import ReplicaTracker
from app.scrape_failures import FailureKind, ScrapeOutcome, failure_outcome
from app.target_states import TargetStates
from app.targets import Target
from app.unpacked_size import UnpackedSizeMeter, UnpackedTooLarge, UnreadableEncoding
from app.upstreams import UpstreamClients

USER_AGENT = "aqua-metrics"
SCRAPE_TIMEOUT_MARGIN_SECONDS = 0.5


def forwardable(value: str | None) -> str | None:
    """A client header value that may go upstream as is: printable ASCII only. Anything else
    (a byte above 0x7f, a control character) is dropped, and the default is sent instead."""
    if value is None or not value.isascii() or not value.isprintable():
        return None
    return value


class Forwarder:
    """Scrapes targets through pooled clients, bounded per target, with a hard deadline."""

    def __init__(
        self,
        *,
        clients: UpstreamClients,
        metrics: ProxyMetrics,
        upstream_timeout_seconds: float,
        max_response_bytes: int,
        max_inflight_per_target: int,
        scrape_interval_seconds: float = 15.0,
        replica_fetch_cap: int = MAX_FETCH_CAP,
        max_unpacked_bytes: int | None = None,
    ) -> None:
        self._clients = clients
        self._metrics = metrics
        self._timeout = upstream_timeout_seconds
        self._max_bytes = max_response_bytes
        self._max_unpacked = max_unpacked_bytes or max_response_bytes
        self._max_inflight = max_inflight_per_target
        self._fetch_cap = max(1, replica_fetch_cap)
        self._interval = scrape_interval_seconds
        self._slots: dict[str, asyncio.Semaphore] = {}
        # One gather per target at a time: overlapping ones would fetch the replicas twice.
        self._gathering: dict[str, asyncio.Lock] = {}
        self._trackers: dict[str, ReplicaTracker] = {}
        self._known: set[str] = set()
        self._codes: dict[str, set[str]] = {}  # upstream status codes counted, per target
        self.states = TargetStates()

    def _prepare(self, name: str) -> None:
        """The per-target state, made on a target's first scrape (discovery adds targets at run
        time) and dropped by `retain` when the target leaves."""
        if name in self._slots:
            return
        self._slots[name] = asyncio.Semaphore(self._max_inflight)
        self._gathering[name] = asyncio.Lock()
        # A replica unseen for two intervals is dropped (its series go stale); the replica count
        # is learned over four.
        # The pages it keeps are bounded like the merged answer: SCRAPE_BODY_SIZE_LIMIT.
        self._trackers[name] = ReplicaTracker(
            max_age_seconds=2 * self._interval,
            learn_window_seconds=4 * self._interval,
            max_retained_bytes=self._max_unpacked,
        )

    def retained_page_bytes(self, name: str) -> int:
        """Bytes of replica pages kept between scrapes for target `name` (at most
        SCRAPE_BODY_SIZE_LIMIT; see `ReplicaTracker.make_room`)."""
        tracker = self._trackers.get(name)
        return tracker.retained_bytes() if tracker is not None else 0

    def retain(self, targets: Iterable[Target]) -> None:
        """The target set changed: close the clients of the targets that left it and drop their
        limits, replica state and series (a departed deployment must not linger on /metrics)."""
        targets = tuple(targets)
        self._known = {target.name for target in targets}
        for name in {*self._slots, *self._codes} - self._known:
            self._slots.pop(name, None)
            self._gathering.pop(name, None)
            self._trackers.pop(name, None)
            self._forget_series(name)
        self._clients.retain(targets)

    def _forget_series(self, name: str) -> None:
        self.states.forget(name)
        metrics = self._metrics
        removals: list[tuple[Any, tuple[str, ...]]] = [
            (metrics.scrape_duration, (name,)),
            (metrics.inflight, (name,)),
            (metrics.scrape_fetches, (name,)),
            (metrics.replicas_served, (name,)),
            (metrics.replicas_expected, (name,)),
            *((metrics.scrape_stops, (name, reason.value)) for reason in StopReason),
            *((metrics.scrape_failures, (name, kind.value)) for kind in FailureKind),
            *((metrics.upstream_responses, (name, code)) for code in self._codes.pop(name, ())),
        ]
        for metric, labels in removals:
            with contextlib.suppress(KeyError):
                metric.remove(*labels)

    def deadline_for(self, scrape_timeout_header: str | None) -> float:
        """Our upstream deadline: the configured one, kept below Prometheus' scrape timeout."""
        deadline = self._timeout
        if scrape_timeout_header:
            try:
                prometheus_timeout = float(scrape_timeout_header)
            except ValueError:
                prometheus_timeout = 0.0
            if prometheus_timeout > 0:
                deadline = min(
                    deadline, max(0.1, prometheus_timeout - SCRAPE_TIMEOUT_MARGIN_SECONDS)
                )
        return deadline

    async def scrape(
        self,
        target: Target,
        *,
        accept: str | None,
        accept_encoding: str | None,
        scrape_timeout_header: str | None,
    ) -> ScrapeOutcome:
        started = time.perf_counter()
        self._known.add(target.name)
        try:
            outcome = await self._scrape_upstream(
                target, accept, accept_encoding, self.deadline_for(scrape_timeout_header)
            )
        finally:
            self._metrics.scrape_duration.labels(target.name).observe(time.perf_counter() - started)
        if target.name not in self._known:  # it left the set while this scrape was in flight
            self._forget_series(target.name)
            return outcome
        if outcome.failure is None:
            self.states.record(target.name, "ok")
        else:
            self._metrics.scrape_failures.labels(target.name, outcome.failure.value).inc()
            detail = f"failing ({outcome.failure.value}"
            if outcome.upstream_status is not None:
                detail += f", upstream {outcome.upstream_status}"
            self.states.record(target.name, detail + ")")
        return outcome

    async def _scrape_upstream(
        self, target: Target, accept: str | None, accept_encoding: str | None, deadline: float
    ) -> ScrapeOutcome:
        self._prepare(target.name)
        slots = self._slots[target.name]
        if slots.locked():
            return self._failure(target, FailureKind.BUSY, limit=str(self._max_inflight))
        async with slots:
            gauge = self._metrics.inflight.labels(target.name)
            gauge.inc()
            loop = asyncio.get_running_loop()
            started = loop.time()
            gathering = self._gathering[target.name]
            try:
                async with asyncio.timeout(deadline):
                    await gathering.acquire()
            except TimeoutError:
                gauge.dec()
                return self._failure(target, FailureKind.TIMEOUT, limit=f"{deadline:g}s")
            try:
                remaining = deadline - (loop.time() - started)
                return await self._gather(target, accept, accept_encoding, deadline, remaining)
            except FetchFailed as failed:
                if not isinstance(failed.outcome, ScrapeOutcome):
                    raise
                return failed.outcome
            except TimeoutError:
                return self._failure(target, FailureKind.TIMEOUT, limit=f"{deadline:g}s")
            except UnpackedTooLarge as too_large:
                # The replicas' pages together: refused like one page too large once unpacked.
                merged = isinstance(too_large, MergedTooLarge)
                return self._failure(
                    target,
                    FailureKind.OVERSIZED,
                    limit=f"SCRAPE_BODY_SIZE_LIMIT ({self._max_unpacked} bytes) once "
                    + ("the replicas' pages are merged" if merged else "uncompressed"),
                )
            except UnreadableEncoding:
                return self._failure(target, FailureKind.PROTOCOL)
            finally:
                gathering.release()
                gauge.dec()

    async def _gather(
        self,
        target: Target,
        accept: str | None,
        accept_encoding: str | None,
        deadline: float,
        remaining: float,
    ) -> ScrapeOutcome:
        """Every replica's page within `remaining` seconds, as one answer (see app.replicas)."""

        async def fetch() -> FetchedPage:
            outcome, unpacked_size = await self._fetch(target, accept, accept_encoding, deadline)
            if outcome.failure is not None:
                raise FetchFailed(outcome)
            return FetchedPage(
                outcome.body,
                outcome.headers.get("content-type", ""),
                outcome.headers.get("content-encoding"),
                unpacked_size,
            )

        tracker = self._trackers[target.name]
        expected = tracker.expected(target.instance_count, time.monotonic())
        result = await gather(
            fetch,
            tracker,
            deadline_seconds=remaining,
            max_fetches=min(self._fetch_cap, suggested_fetch_cap(expected)),
            max_unpacked_bytes=self._max_unpacked,
            instance_count=target.instance_count,
            concurrency=1,
            label_single_replica=False,
        )
        self._count(target, expected, result)
        headers = {}
        if result.content_type:
            headers["content-type"] = result.content_type
        if result.content_encoding:
            headers["content-encoding"] = result.content_encoding
        return ScrapeOutcome(status=200, body=result.body, headers=headers, upstream_status=200)

    def _count(self, target: Target, expected: int, result: Gathered) -> None:
        metrics = self._metrics
        metrics.scrape_fetches.labels(target.name).observe(result.fetches)
        metrics.replicas_served.labels(target.name).set(result.replicas_served)
        metrics.replicas_expected.labels(target.name).set(expected)
        metrics.scrape_stops.labels(target.name, result.stop.value).inc()

    async def _fetch(
        self, target: Target, accept: str | None, accept_encoding: str | None, deadline: float
    ) -> tuple[ScrapeOutcome, int]:
        """One GET of the target, streamed under both size limits, and the page's size once
        unpacked (0 for a failure)."""
        client = self._clients.client_for(target)
        request = client.build_request(
            "GET",
            target.url,
            headers={
                "accept": forwardable(accept) or "text/plain;version=0.0.4;q=1,*/*;q=0.1",
                "accept-encoding": forwardable(accept_encoding) or "identity",
                # The OCI gateway is reported to answer 411 to a GET without it.
                "content-length": "0",
                "user-agent": USER_AGENT,
            },
            # The scrape's deadline bounds every phase; UPSTREAM_CONNECT_TIMEOUT_SECONDS (the
            # client's connect timeout) still bounds opening the connection.
            timeout=httpx.Timeout(
                deadline, connect=min(client.timeout.connect or deadline, deadline)
            ),
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            kind = (
                FailureKind.CONNECT
                if isinstance(exc, httpx.ConnectTimeout)
                else FailureKind.TIMEOUT
            )
            return self._failure(target, kind, limit=f"{deadline:g}s"), 0
        except (httpx.ConnectError, httpx.ProxyError, httpx.UnsupportedProtocol):
            return self._failure(target, FailureKind.CONNECT), 0
        except httpx.TransportError:
            return self._failure(target, FailureKind.PROTOCOL), 0
        try:
            code = str(response.status_code)
            self._codes.setdefault(target.name, set()).add(code)
            self._metrics.upstream_responses.labels(target.name, code).inc()
            if not 200 <= response.status_code < 300:
                return await self._refused_or_error(target, response), 0
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self._max_bytes:
                return self._failure(
                    target,
                    FailureKind.OVERSIZED,
                    limit=f"MAX_RESPONSE_BYTES ({self._max_bytes} bytes)",
                ), 0
            chunks: list[bytes] = []
            size = 0
            unpacked = UnpackedSizeMeter(
                response.headers.get("content-encoding"), self._max_unpacked
            )
            async for chunk in response.aiter_raw():
                size += len(chunk)
                if size > self._max_bytes:
                    return self._failure(
                        target,
                        FailureKind.OVERSIZED,
                        limit=f"MAX_RESPONSE_BYTES ({self._max_bytes} bytes)",
                    ), 0
                unpacked.feed(chunk)
                chunks.append(chunk)
        except UnpackedTooLarge:
            return self._failure(
                target,
                FailureKind.OVERSIZED,
                limit=f"SCRAPE_BODY_SIZE_LIMIT ({self._max_unpacked} bytes) once uncompressed",
            ), 0
        except UnreadableEncoding:
            return self._failure(target, FailureKind.PROTOCOL), 0
        except httpx.TimeoutException:
            return self._failure(target, FailureKind.TIMEOUT, limit=f"{deadline:g}s"), 0
        except httpx.TransportError:
            return self._failure(target, FailureKind.PROTOCOL), 0
        finally:
            await response.aclose()
            await self._clients.close_overrun_connections(client)
        headers = {}
        for name in ("content-type", "content-encoding"):
            value = response.headers.get(name)
            if value:
                headers[name] = value
        outcome = ScrapeOutcome(
            status=200, body=b"".join(chunks), headers=headers, upstream_status=response.status_code
        )
        return outcome, unpacked.size

    async def _refused_or_error(self, target: Target, response: httpx.Response) -> ScrapeOutcome:
        snippet = b""
        try:
            async for chunk in response.aiter_raw():
                snippet += chunk
                if len(snippet) >= REFUSAL_BODY_PREFIX_BYTES:
                    break
        except httpx.TransportError:
            pass
        status = response.status_code
        refused = is_refused(status, snippet[:REFUSAL_BODY_PREFIX_BYTES])
        kind = FailureKind.SIGNATURE_REFUSED if refused else FailureKind.UPSTREAM_STATUS
        return self._failure(target, kind, upstream_status=status)

    def _failure(
        self,
        target: Target,
        kind: FailureKind,
        *,
        upstream_status: int | None = None,
        limit: str = "",
    ) -> ScrapeOutcome:
        return failure_outcome(target.name, kind, upstream_status=upstream_status, limit=limit)
