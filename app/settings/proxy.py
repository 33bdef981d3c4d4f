"""The signing proxy's settings: where it listens, what it scrapes, its limits and timeouts."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.demo.fleet import OutageSchedule, demo_targets
from app.oci_config import ResolvedAuth
from app.replicas.gather import MAX_FETCH_CAP
from app.settings.demo import read_demo
from app.settings.discovery import DiscoverySettings
from app.settings.reader import MAX_BODY_BYTES, MAX_TIMEOUT_SECONDS, _Reader
from app.targets import Target


@dataclass(frozen=True)
class ProxySettings:
    host: str
    port: int
    targets: tuple[Target, ...]  # explicit targets (or the demo); discovery adds to them live
    auth: ResolvedAuth
    upstream_timeout_seconds: float
    connect_timeout_seconds: float
    max_response_bytes: int
    max_inflight_per_target: int
    token_refresh_check_seconds: float
    log_level: str
    discovery: DiscoverySettings | None = None
    # The demo fleet's flaky member goes down on this schedule (DEMO_OUTAGE_AFTER).
    demo_outages: OutageSchedule = field(default_factory=OutageSchedule)
    # Several replicas behind one deployment (issue 11): the tracker's ages follow the interval,
    # and REPLICA_FETCH_CAP bounds the upstream requests of one scrape.
    scrape_interval_seconds: float = 15.0
    replica_fetch_cap: int = MAX_FETCH_CAP
    header_timeout_seconds: float = 10.0  # a client must send its request head within this

    @property
    def advertised_address(self) -> str:
        """host:port at which Prometheus (same container) reaches the proxy."""
        host = "127.0.0.1" if self.host in {"0.0.0.0", "", "::"} else self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{host}:{self.port}"


def _replica_fetch_cap(read: _Reader) -> int:
    """REPLICA_FETCH_CAP: upstream requests one scrape may make, 1 to MAX_FETCH_CAP."""
    # A generous parse bound; the real cap and its own message follow.
    cap = int(
        read.positive_number("REPLICA_FETCH_CAP", MAX_FETCH_CAP, integer=True, maximum=1_000_000)
    )
    if cap > MAX_FETCH_CAP:
        read.problems.append(f"REPLICA_FETCH_CAP: at most {MAX_FETCH_CAP}, got {cap}")
        return MAX_FETCH_CAP
    return cap


def read_proxy(
    read: _Reader,
    targets: tuple[Target, ...],
    auth: ResolvedAuth,
    discovery: DiscoverySettings | None,
    scrape_interval_seconds: float,
) -> ProxySettings:
    """PROXY_*, the upstream limits and the demo fleet; problems go to `read.problems`."""
    demo_count, demo_outages = read_demo(read)
    return ProxySettings(
        host=read.host("PROXY_HOST", "127.0.0.1"),
        port=read.port("PROXY_PORT", 8080),
        # The demo runs only when nothing at all is configured to scrape.
        targets=targets or (() if discovery is not None else demo_targets(demo_count)),
        auth=auth,
        upstream_timeout_seconds=read.positive_number(
            "UPSTREAM_TIMEOUT_SECONDS", 10.0, maximum=MAX_TIMEOUT_SECONDS
        ),
        connect_timeout_seconds=read.positive_number(
            "UPSTREAM_CONNECT_TIMEOUT_SECONDS", 3.0, maximum=MAX_TIMEOUT_SECONDS
        ),
        max_response_bytes=int(
            read.positive_number(
                "MAX_RESPONSE_BYTES", 16 * 1024 * 1024, integer=True, maximum=MAX_BODY_BYTES
            )
        ),
        max_inflight_per_target=int(
            read.positive_number("MAX_INFLIGHT_PER_TARGET", 4, integer=True, maximum=1024)
        ),
        token_refresh_check_seconds=read.positive_number(
            "TOKEN_REFRESH_CHECK_SECONDS", 30.0, maximum=86400
        ),
        log_level=read.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
        discovery=discovery,
        demo_outages=demo_outages,
        scrape_interval_seconds=scrape_interval_seconds,
        replica_fetch_cap=_replica_fetch_cap(read),
        header_timeout_seconds=read.positive_number(
            "PROXY_HEADER_TIMEOUT_SECONDS", 10.0, maximum=MAX_TIMEOUT_SECONDS
        ),
    )
