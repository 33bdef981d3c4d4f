"""Sign a request with a real oci SDK signer, the way the app's proxy hands one over.

The SDK signers are `requests` auth objects: they need `method`, `url`, `headers` (mutable,
case-insensitive), `body` and `path_url` (path+query exactly as sent). This is the client side of
tests; the verdict comes from the independent `cavage` verifier.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import oci
from oci._vendor.requests.structures import CaseInsensitiveDict


@dataclass
class SdkRequest:
    """The minimal request object `AbstractBaseSigner.__call__`/`do_request_sign` use."""

    method: str
    url: str
    headers: CaseInsensitiveDict = field(default_factory=CaseInsensitiveDict)
    body: bytes | str | None = None

    @property
    def path_url(self) -> str:
        """Raw path+query of `url`, never re-encoded (what goes on the request line)."""
        parts = urlsplit(self.url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def sign_with_sdk(
    signer: Callable[..., Any] | Any,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    via_call: bool = True,
) -> dict[str, str]:
    """Return the headers the SDK signer produces for this request.

    `via_call=True` goes through `signer(request)` (which, for instance principals, refreshes
    the token); False calls `signer.do_request_sign(request)` directly (no refresh).
    Body methods get a Content-Length, as `requests` would set before auth runs.
    """
    request = SdkRequest(method.upper(), url, CaseInsensitiveDict(headers or {}), body)
    if body is not None and method.lower() in ("post", "put", "patch"):
        request.headers.setdefault("content-length", str(len(body)))
    if via_call:
        signer(request)
    else:
        signer.do_request_sign(request)
    return dict(request.headers.items())


ClientT = TypeVar("ClientT")


def sdk_client(client_class: Callable[..., ClientT], signer: Any, endpoint: str) -> ClientT:
    """A real SDK client (`oci.<service>.<Name>Client`) signing with an API-key `signer`, pointed
    at a stand-in's `endpoint`, with no circuit breaker and short timeouts.

    An API-key Signer needs the profile's keys in the config too (the SDK validates them).
    """
    tenancy, user, fingerprint = signer.api_key.split("/")
    config = {
        "region": "us-ashburn-1",
        "tenancy": tenancy,
        "user": user,
        "fingerprint": fingerprint,
        "key_file": "unused-with-an-explicit-signer",
    }
    return client_class(
        config,
        signer=signer,
        service_endpoint=endpoint,
        circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy(),
        timeout=(2, 5),
    )
