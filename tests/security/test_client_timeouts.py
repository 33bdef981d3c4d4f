"""Clients that never finish their request head are cut off (issue 16).

Against the real proxy process, over raw sockets: a connection that sends half a request head,
one that dribbles a byte at a time, and one that sends nothing are closed within
PROXY_HEADER_TIMEOUT_SECONDS (plus scheduling slack); a complete request whose answer takes
longer than that is not.
"""

from __future__ import annotations

import socket
import time

import pytest

from tests.support.proxy_process import ProxyProcess
from tests.support.raw_http import build_request, exchange
from tests.support.raw_upstream import RawUpstream, http_response
from tests.support.signed_upstream import default_metrics_body

HEADER_TIMEOUT = 1.0
BOUND = HEADER_TIMEOUT + 2.0  # closed by then (event-loop and CI slack)


@pytest.fixture(scope="module")
def slow_upstream():
    def respond(head: bytes) -> bytes:
        time.sleep(2 * HEADER_TIMEOUT)  # the answer takes longer than the header deadline
        return http_response(default_metrics_body(), {"Content-Type": "text/plain"})

    with RawUpstream(respond) as upstream:
        yield upstream


@pytest.fixture(scope="module")
def proxy(slow_upstream):
    with ProxyProcess(
        {
            "TARGETS": f"slow={slow_upstream.url()}",
            "PROXY_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
        }
    ) as running:
        yield running


def _closed_within(sock: socket.socket, seconds: float, dribble: bytes = b"") -> float:
    """Seconds until the server closed `sock` (EOF or reset); fails after `seconds`. With
    `dribble`, sends one byte of it every 0.2 s meanwhile, as a slowloris client does."""
    started = time.monotonic()
    deadline = started + seconds
    pending = dribble
    while time.monotonic() < deadline:
        sock.settimeout(0.2)
        try:
            if not sock.recv(4096):
                return time.monotonic() - started
        except TimeoutError:
            pass
        except ConnectionResetError:
            return time.monotonic() - started
        if pending:
            try:
                sock.send(pending[:1])
            except OSError:
                return time.monotonic() - started
            pending = pending[1:]
    raise AssertionError(f"connection still open after {seconds}s")


@pytest.mark.parametrize(
    ("first", "dribble"),
    [
        (b"", b""),  # connects, sends nothing
        (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n", b""),  # half a head, then silence
        (b"GET /healthz HTTP/1.1\r\n", b"X-Slow: " + b"a" * 60),  # a byte every 0.2 s
    ],
    ids=["idle", "half-head", "slowloris"],
)
def test_an_unfinished_request_head_is_closed_within_the_bound(proxy, first, dribble):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        if first:
            sock.sendall(first)
        elapsed = _closed_within(sock, BOUND, dribble)
    assert elapsed >= HEADER_TIMEOUT * 0.8, f"closed after {elapsed:.2f}s, before the deadline"


def test_a_complete_request_may_take_longer_than_the_header_deadline(proxy):
    request = build_request(
        "GET", "/targets/slow/metrics", [("Host", "127.0.0.1"), ("Connection", "close")]
    )
    response = exchange("127.0.0.1", proxy.port, request, timeout=15)
    assert response.status == 200, response.raw
    assert response.body == default_metrics_body()


def test_a_keep_alive_connection_gets_a_fresh_deadline_after_each_response(proxy):
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # the next head, never finished
        elapsed = _closed_within(sock, BOUND)
    assert elapsed >= HEADER_TIMEOUT * 0.8
