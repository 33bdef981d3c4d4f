"""Small recording HTTP servers on loopback for security tests.

`RecordingServer` is a decoy: nothing should ever reach it, so it records every request (any
method, any target) and answers 200, as a tempting internal service would. `HostileUpstream` is a
deployment that answers metrics wrapped in every header a proxy must not pass on (cookies,
hop-by-hop headers, a chunked transfer coding), and records what it was sent.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from testkit.background_server import BackgroundHTTPServer, QuietHandler
from tests.support.signed_upstream import METRICS_CONTENT_TYPE, default_metrics_body


@dataclass(frozen=True)
class Seen:
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    def header_names(self) -> set[str]:
        return {k.lower() for k, _ in self.headers}


class _RecordingHandler(QuietHandler):
    def _any(self) -> None:
        owner = self.owner
        owner._record(Seen(self.command, self.path, tuple(self.headers.items())))
        self.read_body()
        owner.answer(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _any
    do_TRACE = do_CONNECT = do_PROPFIND = _any


class RecordingServer(BackgroundHTTPServer):
    """Records every request; answers 200 with a small body."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: list[Seen] = []
        super().__init__(_RecordingHandler)

    @property
    def requests(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self._seen.append(seen)

    def answer(self, handler: QuietHandler) -> None:
        handler.send_bytes(200, b"decoy reached\n", {"Content-Type": "text/plain"})


# Headers no proxy may relay: cookies, auth challenges of the upstream, hop-by-hop headers
# (RFC 9110 7.6.1, including those named in Connection), and upstream-private ones.
HOSTILE_HEADERS: tuple[tuple[str, str], ...] = (
    ("Set-Cookie", "upstream_session=s3cr3t-cookie; Path=/; HttpOnly"),
    ("Set-Cookie", "second=also-secret"),
    ("Connection", "keep-alive, X-Upstream-Private"),
    ("X-Upstream-Private", "named-in-connection"),
    ("Keep-Alive", "timeout=600, max=1000"),
    ("Proxy-Authenticate", 'Basic realm="upstream"'),
    ("Proxy-Connection", "keep-alive"),
    ("Proxy-Authorization", "Basic dXBzdHJlYW06c2VjcmV0"),
    ("Upgrade", "h2c"),
    ("TE", "trailers"),
    ("Trailer", "X-Checksum"),
    ("WWW-Authenticate", 'Signature realm="oci"'),
    ("Strict-Transport-Security", "max-age=1"),
    ("Location", "http://127.0.0.1:1/elsewhere"),
    ("opc-request-id", "upstream/request/id"),
)


class _HostileHandler(QuietHandler):
    def do_GET(self) -> None:
        owner: HostileUpstream = self.owner
        owner._record(Seen(self.command, self.path, tuple(self.headers.items())))
        status = owner.status
        body = default_metrics_body() if status == 200 else b'{"code":"NotAuthorizedOrNotFound"}'
        self.send_response(status)
        self.send_header("Content-Type", METRICS_CONTENT_TYPE)
        for name, value in HOSTILE_HEADERS:
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        half = len(body) // 2
        for piece in (body[:half], body[half:]):
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        self.wfile.write(b"0\r\nX-Checksum: trailer-value\r\n\r\n")


class HostileUpstream(RecordingServer):
    """Answers GETs with metrics (or `status`) plus HOSTILE_HEADERS, chunked, with a trailer."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        super().__init__()
        self._server.RequestHandlerClass = _HostileHandler

    def metrics_url(self) -> str:
        return f"{self.base_url}/metrics"
