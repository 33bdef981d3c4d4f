"""Independent verifier of OCI request signatures (draft-cavage-http-signatures, rsa-sha256).

Written from the draft and OCI's documented rules, not from the oci SDK, so tests can judge the
SDK-driven proxy against the scheme itself:

* `Authorization: Signature version="1",keyId=...,algorithm="rsa-sha256",headers=...,signature=...`
  (parameters in any order, each exactly once).
* Signing string: one `name: value` line per signed header, in the listed order, joined by `\\n`;
  `(request-target)` is `<lower-case method> <path?query exactly as sent>`.
* GET/HEAD/DELETE must sign `date (request-target) host`; POST/PUT/PATCH also `content-length
  content-type x-content-sha256`, and the hash/length must match the body.
* keyId `<tenancy>/<user>/<fingerprint>` (API key) or `ST$<jwt>` (session, resource- and
  instance-principal tokens); a token carries the session public key in its `jwk` claim.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from testkit import jws

GENERIC_HEADERS = ("date", "(request-target)", "host")
BODY_HEADERS = ("content-length", "content-type", "x-content-sha256")
BODY_METHODS = frozenset({"post", "put", "patch"})
SIGNABLE_METHODS = frozenset({"get", "head", "delete", "post", "put", "patch"})
TOKEN_PREFIX = "ST$"
_PARAM_NAMES = frozenset({"version", "keyId", "algorithm", "headers", "signature"})
_PARAM = re.compile(r'\s*([A-Za-z]+)="([^"]*)"\s*(,|$)')
_IMF_FIXDATE = "%a, %d %b %Y %H:%M:%S GMT"


class SignatureError(Exception):
    """The request is not validly signed; `reason` says why (kept short for assertions)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeyKind(StrEnum):
    """Which credential family a keyId belongs to."""

    API_KEY = "api_key"
    TOKEN = "token"
    OTHER = "other"


@dataclass(frozen=True)
class SignatureParams:
    """The parsed parameters of a `Signature` Authorization header."""

    version: str
    key_id: str
    algorithm: str
    headers: tuple[str, ...]
    signature: bytes


@dataclass(frozen=True)
class ResolvedKey:
    """A public key found for a keyId, with who it belongs to (user OCID or token `sub`)."""

    kind: KeyKind
    public_key: rsa.RSAPublicKey
    principal: str
    claims: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VerifiedSignature:
    """Outcome of a successful verification."""

    params: SignatureParams
    key: ResolvedKey
    signing_string: str
    signed_at: datetime

    @property
    def key_id(self) -> str:
        return self.params.key_id

    @property
    def kind(self) -> KeyKind:
        return self.key.kind

    @property
    def claims(self) -> Mapping[str, Any]:
        return self.key.claims


KeyResolver = Callable[[str], ResolvedKey | rsa.RSAPublicKey]


def required_headers_for(method: str) -> tuple[str, ...]:
    """Headers OCI requires in the signed list for `method`."""
    verb = method.lower()
    return GENERIC_HEADERS + BODY_HEADERS if verb in BODY_METHODS else GENERIC_HEADERS


def parse_authorization(value: str) -> SignatureParams:
    """Parse `Signature k="v",...`; reject anything malformed, duplicated, unknown or missing."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "signature" or not rest.strip():
        raise SignatureError("authorization scheme is not Signature")
    params: dict[str, str] = {}
    pos, text = 0, rest.strip()
    while pos < len(text):
        match = _PARAM.match(text, pos)
        if match is None:
            raise SignatureError("malformed signature parameters")
        name, val, sep = match.groups()
        if name not in _PARAM_NAMES:
            raise SignatureError(f"unknown signature parameter {name}")
        if name in params:
            raise SignatureError(f"duplicate signature parameter {name}")
        params[name] = val
        pos = match.end()
        if sep == "," and pos >= len(text):
            raise SignatureError("trailing comma in signature parameters")
    for name in ("version", "keyId", "algorithm", "signature"):
        if not params.get(name):
            raise SignatureError(f"missing signature parameter {name}")
    if params["version"] != "1":
        raise SignatureError(f"unsupported signature version {params['version']}")
    if params["algorithm"] != "rsa-sha256":
        raise SignatureError(f"unsupported algorithm {params['algorithm']}")
    # draft-cavage: an absent headers parameter means just "date".
    signed = tuple(params.get("headers", "date").split(" "))
    if any(not h or h != h.lower() for h in signed) or len(set(signed)) != len(signed):
        raise SignatureError("malformed headers parameter")
    try:
        signature = base64.b64decode(params["signature"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("signature is not base64") from exc
    return SignatureParams(
        params["version"], params["keyId"], params["algorithm"], signed, signature
    )


def build_signing_string(
    method: str, target: str, headers: Mapping[str, str], signed: Collection[str]
) -> str:
    """The exact text that was signed. `headers` must have lower-case names."""
    lines = []
    for name in signed:
        if name == "(request-target)":
            lines.append(f"(request-target): {method.lower()} {target}")
        elif name in headers:
            lines.append(f"{name}: {headers[name]}")
        else:
            raise SignatureError(f"signed header {name} absent from request")
    return "\n".join(lines)


Headers = Mapping[str, str] | Iterable[tuple[str, str]]


def _lower_headers(headers: Headers) -> dict[str, str]:
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    lowered: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        # draft-cavage: repeated headers are joined with ", " in order.
        lowered[key] = f"{lowered[key]}, {value.strip()}" if key in lowered else value.strip()
    return lowered


def _check_date(value: str, now: datetime, max_skew_seconds: float) -> datetime:
    try:
        signed_at = datetime.strptime(value, _IMF_FIXDATE).replace(tzinfo=UTC)
    except ValueError as exc:
        raise SignatureError("date is not an RFC 7231 IMF-fixdate") from exc
    if abs((now - signed_at).total_seconds()) > max_skew_seconds:
        raise SignatureError("date outside the allowed clock skew")
    return signed_at


def _check_body(headers: Mapping[str, str], signed: Collection[str], body: bytes) -> None:
    if "x-content-sha256" in signed:
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")
        if headers.get("x-content-sha256") != digest:
            raise SignatureError("x-content-sha256 does not match the body")
    if "content-length" in signed and headers.get("content-length") != str(len(body)):
        raise SignatureError("content-length does not match the body")


def verify_request(
    method: str,
    target: str,
    headers: Headers,
    resolve_key: KeyResolver,
    *,
    body: bytes = b"",
    now: datetime | None = None,
    max_skew_seconds: float = 300,
    required_headers: Collection[str] | None = None,
    expected_hosts: Collection[str] | None = None,
) -> VerifiedSignature:
    """Verify an OCI-signed request as received; raise `SignatureError` on any defect.

    `target` is the raw path+query from the request line (still percent-encoded). `headers` may
    be a mapping or (name, value) pairs; repeated names are joined with ", " as the draft says.
    `required_headers` overrides the per-method set (the federation call signs no `host`).
    `expected_hosts`, if given, is the set of Host values this server answers to.
    """
    verb = method.lower()
    if verb not in SIGNABLE_METHODS:
        raise SignatureError(f"method {method} cannot be signed")
    if not target.startswith("/"):
        raise SignatureError("request target is not origin-form")
    lowered = _lower_headers(headers)
    authorization = lowered.get("authorization")
    if not authorization:
        raise SignatureError("missing Authorization header")
    params = parse_authorization(authorization)
    required = required_headers_for(verb) if required_headers is None else tuple(required_headers)
    for name in required:
        satisfied = name in params.headers or (name == "date" and "x-date" in params.headers)
        if not satisfied:
            raise SignatureError(f"required header {name} not signed")
    if expected_hosts is not None and lowered.get("host") not in expected_hosts:
        raise SignatureError(f"host {lowered.get('host')!r} is not this server")
    date_header = "x-date" if "x-date" in params.headers else "date"
    if date_header not in lowered:
        raise SignatureError(f"signed header {date_header} absent from request")
    signed_at = _check_date(lowered[date_header], now or datetime.now(UTC), max_skew_seconds)
    _check_body(lowered, params.headers, body)
    signing_string = build_signing_string(verb, target, lowered, params.headers)
    resolved = resolve_key(params.key_id)
    if isinstance(resolved, rsa.RSAPublicKey):
        kind = KeyKind.TOKEN if params.key_id.startswith(TOKEN_PREFIX) else KeyKind.OTHER
        resolved = ResolvedKey(kind, resolved, principal=params.key_id)
    try:
        resolved.public_key.verify(
            params.signature, signing_string.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature as exc:
        raise SignatureError("signature does not verify") from exc
    return VerifiedSignature(params, resolved, signing_string, signed_at)


class KeyRegistry:
    """Resolves keyIds the way OCI's identity service would, for registered test credentials.

    API keys are looked up by exact `<tenancy>/<user>/<fingerprint>`. Token keyIds are accepted
    only if the JWT is RS256-signed by a registered issuer (matched by header `kid`), is within
    `nbf`/`exp`, and carries an RSA `jwk` claim: that key is the one the request must verify with.
    Thread-safe.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._api_keys: dict[str, tuple[str, rsa.RSAPublicKey]] = {}
        self._issuers: dict[str, rsa.RSAPublicKey] = {}

    def add_api_key(
        self, tenancy: str, user: str, fingerprint: str, public_key: rsa.RSAPublicKey
    ) -> str:
        """Register an API signing key; returns its keyId."""
        key_id = f"{tenancy}/{user}/{fingerprint}"
        with self._lock:
            self._api_keys[key_id] = (user, public_key)
        return key_id

    def remove_api_key(self, key_id: str) -> None:
        """Forget an API key (as if deleted from the user)."""
        with self._lock:
            self._api_keys.pop(key_id, None)

    def add_token_issuer(self, kid: str, public_key: rsa.RSAPublicKey) -> None:
        """Trust JWTs whose header `kid` is `kid` and that verify under `public_key`."""
        with self._lock:
            self._issuers[kid] = public_key

    def remove_token_issuer(self, kid: str) -> None:
        with self._lock:
            self._issuers.pop(kid, None)

    def resolve(self, key_id: str) -> ResolvedKey:
        """Return the key for `key_id` or raise `SignatureError`."""
        if key_id.startswith(TOKEN_PREFIX):
            return self._resolve_token(key_id[len(TOKEN_PREFIX) :])
        if key_id.count("/") != 2 or not all(key_id.split("/")):
            raise SignatureError("keyId is neither an API key id nor a token")
        with self._lock:
            entry = self._api_keys.get(key_id)
        if entry is None:
            raise SignatureError("unknown API key")
        user, public_key = entry
        return ResolvedKey(KeyKind.API_KEY, public_key, principal=user)

    __call__ = resolve

    def _resolve_token(self, token: str) -> ResolvedKey:
        try:
            header, _, _, _ = jws.decode_unverified(token)
            with self._lock:
                issuer_key = self._issuers.get(str(header.get("kid")))
            if issuer_key is None:
                raise SignatureError("token from an unknown issuer")
            claims = jws.verify_rs256(token, issuer_key)
            now = self._clock()
            exp = claims.get("exp")
            if not isinstance(exp, int | float) or now >= exp:
                raise SignatureError("token expired")
            nbf = claims.get("nbf")
            if isinstance(nbf, int | float) and now < nbf:
                raise SignatureError("token not yet valid")
            if "jwk" not in claims:
                raise SignatureError("token has no jwk claim")
            public_key = jws.public_key_from_jwk(claims["jwk"])
        except jws.JwtError as exc:
            raise SignatureError(f"bad token: {exc}") from exc
        return ResolvedKey(KeyKind.TOKEN, public_key, str(claims.get("sub", "")), claims)
