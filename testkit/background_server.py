"""A real HTTP/1.1 server on 127.0.0.1 (ephemeral port) running in a background thread.

Base for the fixture servers (model deployment, instance metadata, federation). Threaded with
daemon threads so many concurrent connections work and a stuck handler never blocks shutdown.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from testkit.closing import ClosesOnExit


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512
    owner: Any = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Socket errors (clients hanging up mid-response) are expected in fault tests; stay quiet
        about them, but report real handler bugs."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class QuietHandler(BaseHTTPRequestHandler):
    """Keep-alive handler base with no access log and a few response helpers."""

    protocol_version = "HTTP/1.1"
    server: _Server

    @property
    def owner(self) -> Any:
        return self.server.owner

    def log_message(self, format: str, *args: Any) -> None:
        return

    def read_body(self) -> bytes:
        """Read a Content-Length or chunked request body (empty if neither)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = self.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            return b""
        return self.rfile.read(int(length))

    def send_bytes(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        """Send a complete response with Content-Length."""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reset_connection(self) -> None:
        """Abort the TCP connection with RST (SO_LINGER 0), as a crashing peer would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()


class BackgroundHTTPServer(ClosesOnExit):
    """Owns a `_Server` bound to 127.0.0.1:0 and serves it from a daemon thread."""

    def __init__(self, handler: type[QuietHandler]) -> None:
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.owner = self
        self.host = "127.0.0.1"
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._listening = True
        self._listen_lock = threading.Lock()
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def authority(self) -> str:
        """`host:port`, the value clients put in the Host header."""
        return f"{self.host}:{self.port}"

    @property
    def listening(self) -> bool:
        return self._listening

    def stop_listening(self) -> None:
        """Stop accepting and close the listening socket: new connections are refused.

        Safe to call from a handler thread (shutdown runs on a helper thread).
        """
        with self._listen_lock:
            if not self._listening:
                return
            self._listening = False
        if threading.current_thread() is self._thread:
            raise RuntimeError("stop_listening called from the serve loop")
        self._server.shutdown()
        self._server.server_close()

    def close(self) -> None:
        self.stop_listening()
        self._thread.join(timeout=5)
