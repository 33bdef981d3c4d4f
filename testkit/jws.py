"""Minimal RS256 JWT and RSA JWK handling, written from RFC 7515/7517/7519.

Shared by the token issuer (mints) and the cavage verifier (checks). Deliberately independent of
the oci SDK and of PyJWT so the verifier does not share code with the signer it is judging.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


class JwtError(ValueError):
    """A token that is malformed or whose signature does not verify."""


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64_lenient_decode(text: str) -> bytes:
    """Decode base64 or base64url, padded or not.

    OCI writes JWK `n`/`e` in *standard* base64 without padding (`+`, `/`), while RFC 7517 says
    base64url; accept both so tokens of either style parse.
    """
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise JwtError(f"invalid base64: {exc}") from exc


def json_text(value: Mapping[str, Any]) -> str:
    """Compact JSON, as OCI serialises the `jwk` claim inside its tokens."""
    return json.dumps(dict(value), separators=(",", ":"))


def _int_to_b64(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    return base64.b64encode(raw).rstrip(b"=").decode("ascii")


def jwk_from_public_key(public_key: rsa.RSAPublicKey, kid: str | None = None) -> dict[str, str]:
    """RSA JWK in the shape OCI embeds in its tokens (standard base64, no padding, RS256/sig)."""
    numbers = public_key.public_numbers()
    jwk = {"kty": "RSA", "n": _int_to_b64(numbers.n), "e": _int_to_b64(numbers.e)}
    if kid is not None:
        jwk["kid"] = kid
    jwk.update({"alg": "RS256", "use": "sig"})
    return jwk


def public_key_from_jwk(jwk: Mapping[str, Any] | str) -> rsa.RSAPublicKey:
    """Build an RSA public key from a JWK object or its JSON text (OCI stores it as a string)."""
    if isinstance(jwk, str):
        try:
            jwk = json.loads(jwk)
        except json.JSONDecodeError as exc:
            raise JwtError(f"jwk claim is not JSON: {exc}") from exc
    if not isinstance(jwk, Mapping) or jwk.get("kty") != "RSA":
        raise JwtError("jwk is not an RSA key")
    n_text, e_text = jwk.get("n"), jwk.get("e")
    if not isinstance(n_text, str) or not isinstance(e_text, str):
        raise JwtError("jwk lacks n/e")
    n = int.from_bytes(b64_lenient_decode(n_text), "big")
    e = int.from_bytes(b64_lenient_decode(e_text), "big")
    try:
        return rsa.RSAPublicNumbers(e, n).public_key()
    except ValueError as exc:
        raise JwtError(f"jwk is not a valid RSA key: {exc}") from exc


def encode_rs256(claims: Mapping[str, Any], private_key: rsa.RSAPrivateKey, *, kid: str) -> str:
    """Sign `claims` as a compact JWS with RS256."""
    header = {"kid": kid, "alg": "RS256"}
    signing_input = (
        b64url_encode(json_text(header).encode()) + "." + b64url_encode(json_text(claims).encode())
    )
    signature = private_key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url_encode(signature)}"


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Split a compact JWS into (header, claims, signing input, signature) without checking it."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise JwtError("token is not a three-part compact JWS")
    try:
        header = json.loads(b64_lenient_decode(parts[0]))
        claims = json.loads(b64_lenient_decode(parts[1]))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise JwtError(f"token header/claims are not JSON: {exc}") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JwtError("token header/claims are not JSON objects")
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    return header, claims, signing_input, b64_lenient_decode(parts[2])


def verify_rs256(token: str, public_key: rsa.RSAPublicKey) -> dict[str, Any]:
    """Return the claims of `token` if its RS256 signature verifies under `public_key`."""
    header, claims, signing_input, signature = decode_unverified(token)
    if header.get("alg") != "RS256":
        raise JwtError(f"unsupported JWT alg {header.get('alg')!r}")
    try:
        public_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise JwtError("JWT signature does not verify") from exc
    return claims
