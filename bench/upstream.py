"""A fast stand-in model deployment: serves fixed vLLM payloads over keep-alive HTTP/1.1.

Run as its own process (`python -m bench.upstream --port P --payload-dir D`), so its CPU never
counts against the process being measured. `GET /<payload>/<anything>/metrics` answers the file
`<payload>.prom` from D, pre-gzipped when the request accepts gzip, as vLLM's exporter does. One
request in `--verify-every` has its OCI signature checked by the independent verifier in
testkit/cavage.py (a bad one gets 404 NotAuthorizedOrNotFound); paths under `/unsigned/`
(the benchmark's direct, unproxied scrapes) are never checked; `GET /__stats` reports the counts. A raw asyncio protocol keeps the server's own cost far below the proxy's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from testkit.cavage import KeyRegistry, SignatureError, verify_request

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
NOT_FOUND = b'{"code": "NotAuthorizedOrNotFound", "message": "Authorization failed or requested resource not found."}'


class Upstream:
    """Payloads, the verifier and the counters shared by every connection."""

    def __init__(self, payloads: dict[str, tuple[bytes, bytes]], verify_every: int) -> None:
        self.payloads = payloads
        self.verify_every = verify_every
        self.registry: KeyRegistry | None = None
        self.stats = {"requests": 0, "metrics": 0, "verified": 0, "rejected": 0, "not_found": 0}

    def respond(self, method: str, target: str, headers: dict[str, str]) -> bytes:
        self.stats["requests"] += 1
        if target == "/__stats":
            return _response(200, json.dumps(self.stats).encode(), b"application/json")
        signed = not target.startswith("/unsigned/")
        if not signed:
            target = target.removeprefix("/unsigned")
        name = target.split("/", 2)[1] if target.count("/") >= 2 else ""
        payload = self.payloads.get(name)
        if method != "GET" or payload is None or not target.split("?")[0].endswith("/metrics"):
            self.stats["not_found"] += 1
            return _response(404, NOT_FOUND, b"application/json")
        self.stats["metrics"] += 1
        check = signed and self.registry is not None
        if check and (self.stats["metrics"] - 1) % self.verify_every == 0:
            assert self.registry is not None
            try:
                verify_request(method, target, list(headers.items()), self.registry)
                self.stats["verified"] += 1
            except SignatureError:
                self.stats["rejected"] += 1
                return _response(404, NOT_FOUND, b"application/json")
        plain, gzipped = payload
        if "gzip" in headers.get("accept-encoding", ""):
            return _response(200, gzipped, CONTENT_TYPE, gzip=True)
        return _response(200, plain, CONTENT_TYPE)


def _response(status: int, body: bytes, content_type: bytes, *, gzip: bool = False) -> bytes:
    reason = {200: b"OK", 404: b"Not Found", 400: b"Bad Request"}.get(status, b"Status")
    head = [
        b"HTTP/1.1 %d %s" % (status, reason),
        b"Content-Type: " + content_type,
        b"Content-Length: %d" % len(body),
    ]
    if gzip:
        head += [b"Content-Encoding: gzip", b"Vary: Accept-Encoding"]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


class _Connection(asyncio.Protocol):
    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = self.buffer[:end].decode("latin-1").split("\r\n")
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            parts = lines[0].split(" ")
            if len(parts) != 3:
                self.transport.write(_response(400, b"bad request\n", b"text/plain"))
                self.transport.close()
                return
            self.transport.write(self.upstream.respond(parts[0], parts[1], headers))
            if headers.get("connection", "").lower() == "close":
                self.transport.close()
                return


def load_payloads(directory: Path) -> dict[str, tuple[bytes, bytes]]:
    return {
        path.name.removesuffix(".prom"): (path.read_bytes(), Path(f"{path}.gz").read_bytes())
        for path in directory.glob("*.prom")
    }


async def serve(args: argparse.Namespace) -> None:
    upstream = Upstream(load_payloads(Path(args.payload_dir)), args.verify_every)
    if args.public_key and args.key_id:
        public_key = serialization.load_pem_public_key(Path(args.public_key).read_bytes())
        assert isinstance(public_key, rsa.RSAPublicKey)
        tenancy, user, fingerprint = args.key_id.split("/")
        upstream.registry = KeyRegistry()
        upstream.registry.add_api_key(tenancy, user, fingerprint, public_key)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Connection(upstream), "127.0.0.1", args.port, backlog=1024
    )
    async with server:
        # Bounded: the benchmark kills it when done; this only guards against an orphan.
        await asyncio.sleep(args.max_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--payload-dir", required=True)
    parser.add_argument("--public-key")
    parser.add_argument("--key-id")
    parser.add_argument("--verify-every", type=int, default=20, help="1 verifies every request")
    parser.add_argument("--max-seconds", type=float, default=3600)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
