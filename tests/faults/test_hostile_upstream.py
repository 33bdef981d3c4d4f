"""A deployment that answers like an attacker, against the real proxy process (issue 16).

The upstream is a raw socket (`RawUpstream`) so it can send what no HTTP library would: a gzip
bomb, a body longer than its Content-Length. Clients are raw sockets too where the bytes matter.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
import zlib
from collections.abc import Iterator

import pytest

from tests.support.proxy_process import ProxyProcess, rss_bytes, sample_value
from tests.support.raw_http import build_request, exchange
from tests.support.raw_upstream import RawUpstream, gzip_bomb, http_response
from tests.support.signed_upstream import default_metrics_body

PAGE = default_metrics_body()


def _proxy(**targets: str) -> ProxyProcess:
    listed = ",".join(f"{name}={url}" for name, url in targets.items())
    return ProxyProcess({"TARGETS": listed, "UPSTREAM_TIMEOUT_SECONDS": "10"})


def _failures(proxy: ProxyProcess, name: str, kind: str) -> float:
    return sample_value(
        proxy.metrics(), "aqua_proxy_scrape_failures_total", {"deployment": name, "kind": kind}
    )


def test_a_gzip_bomb_is_refused_by_its_unpacked_size_with_bounded_memory():
    bomb = gzip_bomb()
    assert len(bomb) < 1024 * 1024, "the bomb must pass the 16 MiB wire limit"
    small = zlib.compress(PAGE, 9, 31)
    pages = {b"/bomb/": bomb, b"/fine/": small}

    def respond(head: bytes) -> bytes:
        body = next(page for prefix, page in pages.items() if prefix in head.split(b"\r\n")[0])
        return http_response(body, {"Content-Encoding": "gzip", "Content-Type": "text/plain"})

    with RawUpstream(respond) as upstream:
        with _proxy(
            bomb=upstream.url("/bomb/metrics"), fine=upstream.url("/fine/metrics")
        ) as proxy:
            baseline = rss_bytes(proxy.pid)
            status, body = proxy.get("/targets/bomb/metrics", {"Accept-Encoding": "gzip"})
            assert status == 502, body
            assert b"SCRAPE_BODY_SIZE_LIMIT" in body and b"once uncompressed" in body
            assert _failures(proxy, "bomb", "oversized") == 1
            # A page within the limit is relayed byte for byte, still compressed.
            status, body = proxy.get("/targets/fine/metrics", {"Accept-Encoding": "gzip"})
            assert status == 200 and body == small
            peak = _peak_rss(proxy.pid)
            assert peak - baseline < 64 * 1024 * 1024, (baseline, peak)


def _peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.mark.parametrize("header", ["Accept", "Accept-Encoding"])
def test_a_client_header_that_cannot_be_forwarded_is_dropped_not_a_500(header):
    with RawUpstream(lambda head: http_response(PAGE, {"Content-Type": "text/plain"})) as upstream:
        with _proxy(md=upstream.url()) as proxy:
            request = build_request(
                "GET",
                "/targets/md/metrics",
                [
                    ("Host", "127.0.0.1"),
                    (header, b"text/plain\xe9\xff;q=1"),
                    ("Connection", "close"),
                ],
            )
            response = exchange("127.0.0.1", proxy.port, request)
            assert response.status == 200, response.raw
            assert response.body == PAGE
            sent = upstream.requests[-1].lower()
            assert b"\xe9" not in sent and b"\xff" not in sent
            assert "Traceback" not in proxy.logs()


@contextlib.contextmanager
def blackhole() -> Iterator[int]:
    """A loopback port whose listener never accepts and whose backlog is full: a new connection's
    SYN is dropped, so connecting hangs until the client gives up (like a filtered host)."""
    with socket.socket() as listener, contextlib.ExitStack() as fillers:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        for _ in range(64):
            filler = fillers.enter_context(socket.socket())
            filler.settimeout(0.3)
            try:
                filler.connect(("127.0.0.1", port))
            except TimeoutError:
                break  # the queue is full: this connection (and any later one) hangs
        else:
            raise AssertionError("the backlog never filled")
        yield port


def test_the_connect_timeout_applies_within_a_longer_scrape_deadline():
    with blackhole() as port:
        proxy = ProxyProcess(
            {
                "TARGET": f"http://127.0.0.1:{port}/metrics",
                "UPSTREAM_TIMEOUT_SECONDS": "20",
                "UPSTREAM_CONNECT_TIMEOUT_SECONDS": "0.5",
            }
        )
        with proxy:
            name = _only_target(proxy)
            started = time.monotonic()
            status, body = proxy.get(f"/targets/{name}/metrics")
            elapsed = time.monotonic() - started
            assert status == 502 and b"connect" in body, body
            assert elapsed < 5, f"took {elapsed:.1f}s: the connect timeout did not apply"
            assert _failures(proxy, name, "connect") == 1


def _only_target(proxy: ProxyProcess) -> str:
    status, body = proxy.get("/sd")
    assert status == 200
    groups = json.loads(body)
    assert len(groups) == 1
    return groups[0]["labels"]["deployment"]


def test_a_response_longer_than_its_content_length_does_not_poison_the_next_scrape():
    """The first answer carries, after its declared body, what looks like a second response; a
    reused connection would hand that to the next scrape. The next scrape must get a real page."""
    forged = http_response(b"forged_metric 666\n", {"Content-Type": "text/plain"})
    answers = 0

    def respond(head: bytes) -> bytes:
        nonlocal answers
        answers += 1
        page = http_response(PAGE, {"Content-Type": "text/plain"})
        return page + forged if answers == 1 else page

    with RawUpstream(respond) as upstream, _proxy(md=upstream.url()) as proxy:
        first_status, _ = proxy.get("/targets/md/metrics")
        status, body = proxy.get("/targets/md/metrics")
        assert b"forged_metric" not in body
        assert (status, body) == (200, PAGE)
        assert len(upstream.requests) == 2, "the second scrape must reach the upstream"
        assert first_status == 200
