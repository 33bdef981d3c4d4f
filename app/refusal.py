"""How OCI refuses a signed request, decided in one place.

An OCI gateway answers 401 to a signature it cannot verify (an expired token, a wrong key) and
404 with code NotAuthorizedOrNotFound (not 403) when the principal may not call the deployment.
A plain 404 without that code is an ordinary "not found". The signing retry (refresh once, retry
once) and the forwarder's `signature_refused` failure kind both decide with `is_refused`.
"""

from __future__ import annotations

# How much of a 401/404 body is read to find the error code (OCI's error bodies are small JSON).
REFUSAL_BODY_PREFIX_BYTES = 4096
_NOT_AUTHORIZED_CODE = b"NotAuthorizedOrNotFound"


def may_be_refused(status: int) -> bool:
    """True when the status alone cannot rule a refusal out (the body decides a 404)."""
    return status in (401, 404)


def is_refused(status: int, body_start: bytes) -> bool:
    """True when OCI refused the request's signature or principal (see the module docstring)."""
    return status == 401 or (status == 404 and _NOT_AUTHORIZED_CODE in body_start)
