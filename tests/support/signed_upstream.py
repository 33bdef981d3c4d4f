"""`SignedUpstream`: a real HTTP server standing in for an OCI Data Science model deployment.

It answers only `GET <prefix>/predict/metrics` requests that carry a valid OCI signature (checked
by the independent `cavage` verifier against a `KeyRegistry`), behaving like the real gateway:
404 `NotAuthorizedOrNotFound` for bad/missing signatures and unknown paths alike, 411 for a GET
without `Content-Length: 0` (checked first, before authentication). Every request is recorded so tests can assert what reached it, and
faults (delay, reset, garbage, oversized body, fixed status, refuse-after-N) switch at run time.
"""

from __future__ import annotations

import gzip as gzip_module
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from testkit.background_server import BackgroundHTTPServer, QuietHandler
from testkit.cavage import (
    KeyRegistry,
    SignatureError,
    VerifiedSignature,
    parse_authorization,
    verify_request,
)
from testkit.oci_credentials import fake_ocid

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
NOT_AUTHORIZED = {
    "code": "NotAuthorizedOrNotFound",
    "message": "Authorization failed or requested resource not found.",
}
GARBAGE = b"\x16\x03\x01\x00\xa5garbage-not-http\x00\xff\xfe\r\n\r\n"


def default_metrics_body(model_name: str = "test-model") -> bytes:
    """A small vLLM-style exposition (V1 names, `model_name` and `engine` labels)."""
    labels = f'engine="0",model_name="{model_name}"'
    return (
        "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
        "# TYPE vllm:num_requests_running gauge\n"
        f"vllm:num_requests_running{{{labels}}} 1.0\n"
        "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n"
        "# TYPE vllm:num_requests_waiting gauge\n"
        f"vllm:num_requests_waiting{{{labels}}} 0.0\n"
        "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.\n"
        "# TYPE vllm:kv_cache_usage_perc gauge\n"
        f"vllm:kv_cache_usage_perc{{{labels}}} 0.25\n"
        "# HELP vllm:generation_tokens_total Number of generation tokens processed.\n"
        "# TYPE vllm:generation_tokens_total counter\n"
        f"vllm:generation_tokens_total{{{labels}}} 1234.0\n"
    ).encode()


class FaultMode(StrEnum):
    """How the next responses misbehave."""

    NONE = "none"
    STATUS = "status"  # answer `status` with an OCI-style JSON error
    RESET_MID_BODY = "reset_mid_body"  # headers + half the body, then TCP RST
    GARBAGE = "garbage"  # non-HTTP bytes, then close
    OVERSIZED = "oversized"  # a valid but `oversized_bytes`-long metrics body


@dataclass(frozen=True)
class Faults:
    """Run-time fault switches; see `SignedUpstream.set_faults`."""

    mode: FaultMode = FaultMode.NONE
    delay_seconds: float = 0.0
    status: int = 500
    oversized_bytes: int = 64 * 1024 * 1024
    oversized_declares_length: bool = True
    # Serve N more requests, then close the listening socket (new connections: ECONNREFUSED;
    # further requests on already-open keep-alive connections: TCP reset).
    refuse_after: int | None = None


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it arrived, and what the upstream made of it."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    verified: VerifiedSignature | None
    error: str | None
    status: int | None  # None when a fault answered without an HTTP status
    fault: FaultMode = FaultMode.NONE

    def header(self, name: str) -> str | None:
        """First value of header `name` (case-insensitive), or None."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    def header_names(self) -> set[str]:
        return {k.lower() for k, _ in self.headers}

    @property
    def authorization(self) -> str | None:
        return self.header("authorization")

    @property
    def key_id(self) -> str | None:
        """keyId of the Authorization header, even when verification failed."""
        if self.verified is not None:
            return self.verified.key_id
        try:
            return parse_authorization(self.authorization or "").key_id
        except SignatureError:
            return None


def _accepts_gzip(accept_encoding: str | None) -> bool:
    """True if the Accept-Encoding value allows gzip (explicitly or via `*`, with q > 0)."""
    for item in (accept_encoding or "").split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        if coding.lower() not in ("gzip", "*"):
            continue
        quality = 1.0
        for param in params:
            if param.lower().startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        return quality > 0
    return False


Send = Callable[[], None]


class _Handler(QuietHandler):
    """Decides the answer, records the request, then sends: a test that has the response
    always finds the request in `SignedUpstream.requests`."""

    owner: SignedUpstream

    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def _serve(self) -> None:
        up = self.owner
        faults, number = up._admit()
        rec: dict[str, Any] = {
            "method": self.command,
            "target": self.path,
            "headers": tuple(self.headers.items()),
            "body": self.read_body(),
            "verified": None,
            "error": None,
            "status": None,
            "fault": faults.mode,
        }
        send: Send = self.reset_connection
        try:
            if faults.refuse_after is not None and number > faults.refuse_after:
                rec["error"] = "refused"
            else:
                if faults.refuse_after is not None and number == faults.refuse_after:
                    # Close the listener before answering: once the client has this response,
                    # every new connection is refused (no race with a follow-up request).
                    up.stop_listening()
                if faults.delay_seconds and up._stopping.wait(faults.delay_seconds):
                    rec["error"] = "server closing"
                else:
                    send = self._decide(up, faults, rec)
        finally:
            up._record(RecordedRequest(**rec))
        send()

    def _json(self, status: int, payload: dict[str, str]) -> Send:
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "opc-request-id": fake_ocid("request")[-32:],
        }
        return lambda: self.send_bytes(status, body, headers)

    def _decide(self, up: SignedUpstream, faults: Faults, rec: dict[str, Any]) -> Send:
        """Fill in `rec` (status, verification, error) and return how to answer."""
        if faults.mode is FaultMode.GARBAGE:
            return self._send_garbage
        if self.command == "GET" and (self.headers.get("Content-Length") or "").strip() != "0":
            rec["error"], rec["status"] = "GET without Content-Length: 0", 411
            return self._json(411, {"code": "LengthRequired", "message": "Length Required"})
        try:
            rec["verified"] = verify_request(
                self.command,
                self.path,
                self.headers.items(),
                up.registry,
                body=rec["body"],
                max_skew_seconds=up.max_skew_seconds,
                expected_hosts=up.accepted_hosts,
            )
        except SignatureError as exc:
            rec["error"], rec["status"] = exc.reason, 404
            return self._json(404, NOT_AUTHORIZED)
        if self.command != "GET" or self.path != up.metrics_path:
            rec["error"], rec["status"] = "unknown method or path", 404
            return self._json(404, NOT_AUTHORIZED)
        rec["status"] = faults.status if faults.mode is FaultMode.STATUS else 200
        if faults.mode is FaultMode.STATUS:
            return self._json(faults.status, {"code": "InjectedFault", "message": "injected"})
        if faults.mode is FaultMode.OVERSIZED:
            return lambda: self._send_oversized(faults)
        body = up.body_factory()
        headers = {"Content-Type": METRICS_CONTENT_TYPE}
        if up.gzip and _accepts_gzip(self.headers.get("Accept-Encoding")):
            body = gzip_module.compress(body)
            headers.update({"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
        if faults.mode is FaultMode.RESET_MID_BODY:
            return lambda: self._send_half_then_reset(body, headers)
        return lambda: self.send_bytes(200, body, headers)

    def _send_garbage(self) -> None:
        self.close_connection = True
        self.wfile.write(GARBAGE)

    def _send_half_then_reset(self, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: max(1, len(body) // 2)])
        self.reset_connection()

    def _send_oversized(self, faults: Faults) -> None:
        line = b'vllm:oversized_padding{model_name="test-model",engine="0",pad="' + b"x" * 200
        line += b'"} 1.0\n'
        chunk = line * max(1, 65536 // len(line))
        self.send_response(200)
        self.send_header("Content-Type", METRICS_CONTENT_TYPE)
        if faults.oversized_declares_length:
            self.send_header("Content-Length", str(faults.oversized_bytes))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        remaining = faults.oversized_bytes
        while remaining > 0 and not self.owner._stopping.is_set():
            piece = chunk[:remaining]
            self.wfile.write(piece)
            remaining -= len(piece)


class SignedUpstream(BackgroundHTTPServer):
    """A model deployment stand-in; use as a context manager.

    `url` is what the app is configured with (the model deployment URL); scrapes go to
    `metrics_url`. Requests are verified against `registry`; the Host must be this server.
    """

    def __init__(
        self,
        registry: KeyRegistry,
        *,
        body_factory: Callable[[], bytes] = default_metrics_body,
        gzip: bool = True,
        prefix: str | None = None,
        max_skew_seconds: float = 300,
    ) -> None:
        self.registry = registry
        self.body_factory = body_factory
        self.gzip = gzip
        self.max_skew_seconds = max_skew_seconds
        self.prefix = prefix or "/" + fake_ocid("datasciencemodeldeployment", "iad")
        self.metrics_path = f"{self.prefix}/predict/metrics"
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._faults = Faults()
        self._count = 0
        self._requests: list[RecordedRequest] = []
        super().__init__(_Handler)
        self.accepted_hosts = frozenset({self.authority, f"localhost:{self.port}"})

    @property
    def url(self) -> str:
        return f"{self.base_url}{self.prefix}"

    @property
    def metrics_url(self) -> str:
        return f"{self.base_url}{self.metrics_path}"

    @property
    def faults(self) -> Faults:
        with self._lock:
            return self._faults

    def set_faults(self, **changes: object) -> Faults:
        """Change fault switches (fields of `Faults`) for subsequent requests.

        `refuse_after` counts requests from this call on.
        """
        with self._lock:
            self._faults = replace(self._faults, **changes)  # type: ignore[arg-type]
            if "refuse_after" in changes:
                self._count = 0
            return self._faults

    def reset_faults(self) -> None:
        with self._lock:
            self._faults = Faults()

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def unexpected_requests(self) -> list[RecordedRequest]:
        """Requests for anything but `GET <metrics_path>`."""
        return [r for r in self.requests if (r.method, r.target) != ("GET", self.metrics_path)]

    def close(self) -> None:
        self._stopping.set()
        super().close()

    def _admit(self) -> tuple[Faults, int]:
        with self._lock:
            self._count += 1
            return self._faults, self._count

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)
