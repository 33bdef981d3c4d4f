"""Shared parts of the loopback stand-ins of OCI APIs (Data Science, Monitoring, Notifications).

Each stand-in checks every request's OCI signature with the independent `testkit.cavage`
verifier, answers errors as the service's `{"code", "message"}` JSON with an `opc-request-id`,
records every request, and (two of them) pages with an opaque `page` / `opc-next-page` token and
refuses denied compartments. Those parts live here once; each stand-in keeps its own paths,
shapes and fault scripting.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from testkit.background_server import BackgroundHTTPServer, QuietHandler
from testkit.cavage import KeyRegistry, VerifiedSignature, verify_request
from testkit.oci_credentials import fake_ocid

# The service error `code` for each HTTP status the stand-ins answer.
OCI_ERROR_CODES = {
    400: "InvalidParameter",
    401: "NotAuthenticated",
    404: "NotAuthorizedOrNotFound",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}

CallT = TypeVar("CallT")


class SignedApiServer(BackgroundHTTPServer, Generic[CallT]):
    """A signature-checking OCI API stand-in: key registry, accepted Host values, call record and
    denied compartments, all guarded by one lock."""

    def __init__(
        self,
        registry: KeyRegistry,
        handler: type[QuietHandler],
        *,
        max_skew_seconds: float = 300,
    ) -> None:
        self.registry = registry
        self.max_skew_seconds = max_skew_seconds
        self._lock = threading.Lock()
        self._calls: list[CallT] = []
        self._denied_compartments: set[str] = set()
        super().__init__(handler)
        self.accepted_hosts = frozenset({self.authority, f"localhost:{self.port}"})

    @property
    def endpoint(self) -> str:
        """The `service_endpoint` for the SDK (it appends the API version)."""
        return self.base_url

    @property
    def calls(self) -> list[CallT]:
        with self._lock:
            return list(self._calls)

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def deny_compartment(self, compartment_id: str, denied: bool = True) -> None:
        """Answer 404 NotAuthorizedOrNotFound for this compartment (a missing IAM policy)."""
        with self._lock:
            if denied:
                self._denied_compartments.add(compartment_id)
            else:
                self._denied_compartments.discard(compartment_id)

    def _is_denied(self, compartment_id: str) -> bool:
        with self._lock:
            return compartment_id in self._denied_compartments

    def _record(self, call: CallT) -> None:
        with self._lock:
            self._calls.append(call)


class SignedApiHandler(QuietHandler):
    """Handler base: verify the request's signature, answer OCI JSON."""

    owner: SignedApiServer[Any]

    def verify_signature(self, body: bytes) -> VerifiedSignature:
        """Verify this request (raises `SignatureError`) against the owner's registry and Hosts."""
        api = self.owner
        return verify_request(
            self.command,
            self.path,
            self.headers.items(),
            api.registry,
            body=body,
            max_skew_seconds=api.max_skew_seconds,
            expected_hosts=api.accepted_hosts,
        )

    def send_json(
        self,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
        *,
        request_id: Callable[[], str] = lambda: fake_ocid("request")[-32:],
    ) -> None:
        """Send `payload` as JSON with the service's `opc-request-id` header."""
        self.send_bytes(
            status,
            json.dumps(payload).encode(),
            {
                "Content-Type": "application/json",
                "opc-request-id": request_id(),
                **(headers or {}),
            },
        )


def error_body(status: int, message: str, code: str | None = None) -> dict[str, str]:
    """The service's error JSON for `status` (`code` overrides the status's usual one)."""
    return {"code": code or OCI_ERROR_CODES.get(status, "InternalServerError"), "message": message}


def encode_page(offset: int) -> str:
    """The opaque `opc-next-page` token for a listing continuing at `offset`."""
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def decode_page(token: str) -> int | None:
    """The offset a `page` token stands for; None when it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    prefix, _, number = text.partition(":")
    return int(number) if prefix == "offset" and number.isdigit() else None
