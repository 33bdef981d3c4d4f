"""`oci` SDK clients as every OCI call of the product wants them, the kinds their failures are
counted by, and the check of an endpoint override.

Each caller (fleet listing, OCI Monitoring, OCI Notifications) paces, retries and counts its own
attempts, so the SDK's retries and circuit breaker are off. The signer is explicit: the SDK's
`config` carries only what it validates (see `client_config`). The `oci` package is imported only
when a client is built or a failure classified: the settings import this module.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from app.targets import is_loopback_host

# How a call failed, as counted (`error`, anything else, is counted apart).
CALL_FAILURES = (
    "throttled",
    "server_error",
    "timeout",
    "unreachable",
    "not_authenticated",
    "not_authorized",
    "bad_request",
)


def client_config(signer: Any, region: str) -> dict[str, str]:
    """The SDK client's `config` for an explicit signer.

    The SDK validates `config` unless the signer is a token/key-pair signer; for an API-key
    `oci.signer.Signer` it wants the profile's keys, which the signer's own key id
    (`<tenancy>/<user>/<fingerprint>`) supplies. The key file itself is never read again.
    """
    config = {"region": region}
    key_id = str(getattr(signer, "api_key", ""))
    parts = key_id.split("/")
    if len(parts) == 3 and not key_id.startswith(("ST$", "resource/")):
        tenancy, user, fingerprint = parts
        config.update(
            tenancy=tenancy, user=user, fingerprint=fingerprint, key_file="(held by the signer)"
        )
    return config


def build_sdk_client(
    client_class: Any,
    signer: Any,
    region: str,
    *,
    timeout: tuple[float, float],
    endpoint: str | None,
) -> Any:
    """`client_class` (an `oci` service client) for `region` or the `endpoint` override, signing
    with `signer`, `timeout` = (connect, read) seconds, without SDK retries or circuit breaker."""
    import oci

    kwargs: dict[str, Any] = {
        "signer": signer,
        "timeout": timeout,
        "retry_strategy": oci.retry.NoneRetryStrategy(),
        "circuit_breaker_strategy": oci.circuit_breaker.NoCircuitBreakerStrategy(),
    }
    if endpoint:
        kwargs["service_endpoint"] = endpoint.rstrip("/")
    return client_class(client_config(signer, region), **kwargs)


def call_failure(exc: BaseException, host: str) -> tuple[str, str]:
    """The kind (one of CALL_FAILURES, else `error`) and a one-line summary, with no secret in
    it, of an SDK or transport exception raised by a call to `host`."""
    import oci

    if isinstance(exc, oci.exceptions.ServiceError):
        described = f"HTTP {exc.status} {exc.code or ''}".strip()
        if exc.status == 429:
            return "throttled", described
        if exc.status >= 500:
            return "server_error", described
        if exc.status == 401:
            return "not_authenticated", described
        if exc.status in (403, 404):
            return "not_authorized", described
        return "bad_request", described
    name = type(exc).__name__
    # The SDK re-raises a read timeout as a plain RequestException; its text says so (the text
    # is only inspected here, never logged).
    timed_out = "timed out" in str(exc).lower() or "Timeout" in name
    if isinstance(exc, oci.exceptions.ConnectTimeout) or timed_out:
        return "timeout", f"no answer from {host} in time ({name})"
    if isinstance(exc, oci.exceptions.RequestException | ConnectionError | OSError):
        return "unreachable", f"cannot reach {host} ({name})"
    return "error", f"unexpected {name}"


def endpoint_problem(setting: str, endpoint: str) -> str | None:
    """A one-line problem with the endpoint override read from `setting`, or None:
    `scheme://host[:port]`, https only, except loopback."""
    try:
        parts = urlsplit(endpoint.strip())
        parts.port  # noqa: B018 - parsed to reject a malformed port
    except ValueError:
        return f"{setting}: {endpoint!r} is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{setting}: {endpoint!r} is not an http(s) URL"
    if parts.username is not None or parts.password is not None:
        return f"{setting}: must not carry user:password"
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        return (
            f"{setting}: {endpoint!r} uses plain http; only https is allowed, "
            "except for loopback hosts"
        )
    if parts.path.strip("/") or parts.query or parts.fragment:
        return f"{setting}: give only scheme://host[:port], not {endpoint!r}"
    return None
