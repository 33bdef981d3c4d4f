"""A deployment stand-in that writes exactly the bytes a test gives it, on a raw socket.

HTTP server libraries frame their responses correctly; a hostile deployment does not. Each request
(head read up to the blank line) is answered with `respond(request_head)`'s bytes as they are, on a
keep-alive connection, until the client closes it. Connections and requests are counted.
"""

from __future__ import annotations

import socket
import threading
import zlib
from collections.abc import Callable

from testkit.closing import ClosesOnExit

Responder = Callable[[bytes], bytes]
BOMB_UNPACKED = 256 * 1024 * 1024  # 4x the default SCRAPE_BODY_SIZE_LIMIT (64 MiB)


class RawUpstream(ClosesOnExit):
    def __init__(self, respond: Responder) -> None:
        self.respond = respond
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.connections = 0
        self.requests: list[bytes] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def url(self, path: str = "/metrics") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    try:
                        data = conn.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                with self._lock:
                    self.requests.append(head)
                try:
                    conn.sendall(self.respond(head))
                except OSError:
                    return

    def close(self) -> None:
        self._listener.close()


def http_response(body: bytes, headers: dict[str, str] | None = None, status: int = 200) -> bytes:
    """A correctly framed HTTP/1.1 response (Content-Length), as bytes."""
    lines = [f"HTTP/1.1 {status} OK", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def gzip_bomb(unpacked: int = BOMB_UNPACKED) -> bytes:
    """A gzip body of valid exposition lines that unpacks to `unpacked` bytes (~1000:1)."""
    line = b"vllm:num_requests_running 1\n"
    block = line * (1024 * 1024 // len(line))
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [packer.compress(block) for _ in range(unpacked // len(block))]
    parts.append(packer.flush())
    return b"".join(parts)
