"""HTTP/1.1 over a raw socket: send exactly the bytes a test wants, read exactly what comes back.

HTTP clients normalise what they send (they resolve `..`, re-encode paths, refuse absolute-URI
targets or odd methods, add or merge headers) and hide what they receive (hop-by-hop headers,
transfer coding). Security tests need neither, so they use this.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class RawResponse:
    status: int | None  # None when the server closed without a parseable status line
    headers: tuple[tuple[str, str], ...]
    body: bytes
    raw: bytes

    def header_names(self) -> set[str]:
        return {name.lower() for name, _ in self.headers}

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    def all_values(self, name: str) -> list[str]:
        wanted = name.lower()
        return [v for k, v in self.headers if k.lower() == wanted]


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        line, _, rest = data.partition(b"\r\n")
        try:
            size = int(line.split(b";")[0].strip() or b"0", 16)
        except ValueError:
            return bytes(out)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out)


def parse_response(raw: bytes, *, head: bool = False) -> RawResponse:
    header_block, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        return RawResponse(None, (), b"", raw)
    lines = header_block.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    try:
        status = int(parts[1]) if len(parts) >= 2 and parts[0].startswith(b"HTTP/") else None
    except ValueError:
        status = None
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.append((name.decode("latin-1").strip(), value.decode("latin-1").strip()))
    response = RawResponse(status, tuple(headers), b"", raw)
    if head:
        return response
    transfer = (response.header("transfer-encoding") or "").lower()
    length = response.header("content-length")
    if "chunked" in transfer:
        body = _dechunk(rest)
    elif length is not None and length.isdigit():
        body = rest[: int(length)]
    else:
        body = rest
    return RawResponse(status, tuple(headers), body, raw)


def _complete(raw: bytes, head: bool) -> bool:
    """True when `raw` holds one whole response (so we need not wait for the server to close)."""
    _, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        return False
    if head:
        return True
    response = parse_response(raw, head=True)
    if response.status is not None and (
        100 <= response.status < 200 or response.status in (204, 304)
    ):
        return True
    length = response.header("content-length")
    if length is not None and length.isdigit():
        return len(rest) >= int(length)
    if "chunked" in (response.header("transfer-encoding") or "").lower():
        return rest.endswith(b"0\r\n\r\n")
    return False


def exchange(
    host: str, port: int, request: bytes, *, timeout: float = 10.0, head: bool = False
) -> RawResponse:
    """Send `request` as is and read one response (until complete, EOF or `timeout`)."""
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    with socket.create_connection((host, port), timeout=timeout) as sock:
        try:
            sock.sendall(request)
        except OSError:
            pass  # the server may answer (400) and close before reading everything
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
            if _complete(b"".join(chunks), head):
                break
    return parse_response(b"".join(chunks), head=head)


def build_request(
    method: str | bytes,
    target: str | bytes,
    headers: list[tuple[str | bytes, str | bytes]],
    body: bytes = b"",
) -> bytes:
    """Bytes of one HTTP/1.1 request; str parts are UTF-8 encoded (so unicode goes out raw)."""

    def raw(value: str | bytes) -> bytes:
        return value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")

    lines = [raw(method) + b" " + raw(target) + b" HTTP/1.1"]
    lines += [raw(name) + b": " + raw(value) for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
