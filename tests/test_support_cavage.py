"""The independent cavage verifier accepts what the real oci SDK signers produce, and nothing else."""

from __future__ import annotations

import base64
import email.utils
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import oci
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from oci.auth.signers import SecurityTokenSigner

from testkit import jws
from testkit.cavage import (
    KeyKind,
    KeyRegistry,
    SignatureError,
    build_signing_string,
    parse_authorization,
    verify_request,
)
from testkit.oci_credentials import (
    TokenIssuer,
    make_api_key_profile,
    make_resource_principal_v22,
    make_security_token_profile,
)
from tests.support.sdk_signing import sign_with_sdk

URL = "https://modeldeployment.us-ashburn-1.oci.customer-oci.com/ocid1.md/predict/metrics?a=%7E&b=1"
TARGET = "/ocid1.md/predict/metrics?a=%7E&b=1"
HOST = "modeldeployment.us-ashburn-1.oci.customer-oci.com"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Registry trusting one issuer, one API key profile and one session-token profile."""
    directory = tmp_path_factory.mktemp("cavage")
    registry = KeyRegistry()
    issuer = TokenIssuer()
    issuer.register_with(registry)
    api = make_api_key_profile(directory)
    api.register_with(registry)
    other = make_api_key_profile(directory, profile="OTHER")  # never registered
    session = make_security_token_profile(directory, issuer, config_path=directory / "config")
    config = oci.config.from_file(str(api.config_path), "DEFAULT")
    return SimpleNamespace(
        directory=directory,
        registry=registry,
        issuer=issuer,
        api=api,
        other=other,
        session=session,
        signer=oci.signer.Signer.from_config(config),
    )


def _verify(env, headers, *, method="GET", target=TARGET, body=b"", **kwargs):
    return verify_request(method, target, headers, env.registry, body=body, **kwargs)


def _reason(env, headers, **kwargs) -> str:
    with pytest.raises(SignatureError) as info:
        _verify(env, headers, **kwargs)
    return info.value.reason


def _sign_raw(private_key: rsa.RSAPrivateKey, key_id: str, headers: dict, signed: list[str]):
    """Sign with our own code, to build requests the SDK would never produce."""
    text = build_signing_string("get", TARGET, headers, signed)
    sig = private_key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())
    return {
        **headers,
        "authorization": (
            f'Signature version="1",keyId="{key_id}",algorithm="rsa-sha256",'
            f'headers="{" ".join(signed)}",signature="{base64.b64encode(sig).decode()}"'
        ),
    }


def test_api_key_signature_from_sdk_verifies(env):
    verified = _verify(env, sign_with_sdk(env.signer, "GET", URL))
    assert verified.kind is KeyKind.API_KEY
    assert verified.key.principal == env.api.user
    assert verified.key_id == env.api.key_id
    assert verified.params.headers == ("date", "(request-target)", "host")
    assert verified.signing_string.splitlines()[1] == f"(request-target): get {TARGET}"


def test_post_signature_covers_body(env):
    body = b'{"prompt": "hi"}'
    headers = sign_with_sdk(env.signer, "POST", URL, body=body)
    verified = _verify(env, headers, method="POST", body=body)
    assert set(verified.params.headers) >= {"content-length", "content-type", "x-content-sha256"}
    assert "x-content-sha256" in _reason(env, headers, method="POST", body=b'{"prompt": "ho"}')


def test_session_token_signature_verifies_with_token_claims(env):
    key = oci.signer.load_private_key_from_file(str(env.session.key.private_path))
    signer = SecurityTokenSigner(env.session.token, key)
    verified = _verify(env, sign_with_sdk(signer, "GET", URL))
    assert verified.kind is KeyKind.TOKEN
    assert verified.claims["sub"] == env.session.user
    assert verified.claims["ptype"] == "user"


@pytest.mark.parametrize("mode", ["literal", "file"])
def test_resource_principal_v22_signature_verifies(env, mode, monkeypatch):
    rp = make_resource_principal_v22(env.directory / mode, env.issuer, mode=mode)
    for name, value in rp.env.items():
        monkeypatch.setenv(name, value)
    signer = oci.auth.signers.get_resource_principals_signer()
    verified = _verify(env, sign_with_sdk(signer, "GET", URL))
    assert verified.kind is KeyKind.TOKEN
    assert verified.claims["res_id"] == rp.resource_id
    assert signer.tenancy_id == rp.tenancy
    assert signer.compartment_id == rp.compartment


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("target", "/ocid1.md/predict/metrics?a=~&b=1"),  # %7E decoded, as requests.prepare does
        ("target", "/ocid1.md/predict/metrics?a=%7E&b=2"),
        ("target", "/ocid1.other/predict/metrics?a=%7E&b=1"),
        ("host", "attacker.example.com"),
        ("date", email.utils.formatdate(usegmt=True, timeval=0)),
        ("method", "DELETE"),
    ],
)
def test_tampering_breaks_the_signature(env, field, value):
    headers = sign_with_sdk(env.signer, "GET", URL)
    kwargs = {}
    if field == "target":
        kwargs["target"] = value
    elif field == "method":
        kwargs["method"] = value
    else:
        headers[field] = value
        if field == "date":
            kwargs["max_skew_seconds"] = 10**10  # prove the signature itself fails, not the skew
    assert _reason(env, headers, **kwargs) == "signature does not verify"


def test_date_outside_skew_is_rejected(env):
    headers = sign_with_sdk(env.signer, "GET", URL)
    later = datetime.now(UTC) + timedelta(minutes=6)
    assert "skew" in _reason(env, headers, now=later)
    _verify(env, headers, now=datetime.now(UTC) + timedelta(minutes=4))


def test_signature_by_another_key_is_rejected(env):
    """The registered keyId, but the private key of someone else."""
    forged = oci.signer.Signer(
        env.api.tenancy, env.api.user, env.api.fingerprint, str(env.other.key.private_path)
    )
    assert _reason(env, sign_with_sdk(forged, "GET", URL)) == "signature does not verify"


def test_unknown_or_removed_api_key_is_rejected(env):
    other = oci.signer.Signer.from_config(oci.config.from_file(str(env.other.config_path), "OTHER"))
    assert _reason(env, sign_with_sdk(other, "GET", URL)) == "unknown API key"
    key_id = env.other.register_with(env.registry)
    _verify(env, sign_with_sdk(other, "GET", URL))
    env.registry.remove_api_key(key_id)
    assert _reason(env, sign_with_sdk(other, "GET", URL)) == "unknown API key"


@pytest.mark.parametrize(
    "signed",
    [["date", "(request-target)"], ["(request-target)", "host"], ["date", "host"]],
)
def test_required_header_missing_from_signed_list(env, signed):
    own = oci.signer.load_private_key_from_file(str(env.api.key.private_path))
    headers = {"date": email.utils.formatdate(usegmt=True), "host": HOST}
    reason = _reason(env, _sign_raw(own, env.api.key_id, headers, signed))
    assert reason.startswith("required header") and reason.endswith("not signed")


def test_post_must_sign_body_headers(env):
    headers = sign_with_sdk(env.signer, "GET", URL)  # a GET-style signature replayed as POST
    assert _reason(env, headers, method="POST") == "required header content-length not signed"


def test_expired_token_is_rejected(env):
    key = oci.signer.load_private_key_from_file(str(env.session.key.private_path))
    token = env.issuer.mint_session_token(
        env.session.key.public_key,
        user=env.session.user,
        tenancy=env.session.tenancy,
        ttl_seconds=-1,
    )
    headers = sign_with_sdk(SecurityTokenSigner(token, key), "GET", URL)
    assert _reason(env, headers) == "token expired"


def test_token_from_unknown_issuer_or_for_another_key_is_rejected(env):
    key = oci.signer.load_private_key_from_file(str(env.session.key.private_path))
    rogue = TokenIssuer(kid="rogue")
    token = rogue.mint_session_token(env.session.key.public_key, user="u", tenancy="t")
    headers = sign_with_sdk(SecurityTokenSigner(token, key), "GET", URL)
    assert _reason(env, headers) == "token from an unknown issuer"
    impostor = TokenIssuer(kid=env.issuer.kid)  # same kid, different issuer key
    token = impostor.mint_session_token(env.session.key.public_key, user="u", tenancy="t")
    headers = sign_with_sdk(SecurityTokenSigner(token, key), "GET", URL)
    assert _reason(env, headers) == "bad token: JWT signature does not verify"
    # A genuine token bound to the session key, but the request signed with a different key.
    other_key = oci.signer.load_private_key_from_file(str(env.other.key.private_path))
    headers = sign_with_sdk(SecurityTokenSigner(env.session.token, other_key), "GET", URL)
    assert _reason(env, headers) == "signature does not verify"


def test_missing_authorization_and_unsignable_requests(env):
    headers = sign_with_sdk(env.signer, "GET", URL)
    del headers["authorization"]
    assert _reason(env, headers) == "missing Authorization header"
    assert "origin-form" in _reason(env, {}, target=URL)
    assert "cannot be signed" in _reason(env, {}, method="OPTIONS")


def test_expected_hosts_rejects_a_signature_for_another_host(env):
    headers = sign_with_sdk(env.signer, "GET", URL)
    _verify(env, headers, expected_hosts={HOST})
    assert "is not this server" in _reason(env, headers, expected_hosts={"127.0.0.1:8080"})


def test_repeated_headers_are_joined_per_draft(env):
    headers = sign_with_sdk(env.signer, "GET", URL)
    pairs = [*headers.items(), ("date", "Thu, 01 Jan 1970 00:00:00 GMT")]
    assert _reason(env, pairs) == "date is not an RFC 7231 IMF-fixdate"


@pytest.mark.parametrize(
    "value",
    [
        "",
        'Basic keyId="a"',
        'Signature keyId="a",algorithm="rsa-sha256",signature="AAAA",version="1",keyId="b"',
        'Signature keyId="a",algorithm="rsa-sha256",signature="AAAA",version="1",extra="x"',
        'Signature keyId="a",algorithm="rsa-sha256",signature="AAAA"',
        'Signature keyId="a",algorithm="rsa-sha256",signature="AAAA",version="2"',
        'Signature keyId="a",algorithm="hmac-sha256",signature="AAAA",version="1"',
        'Signature keyId="a",algorithm="rsa-sha256",signature="!!!",version="1"',
        'Signature keyId="a",algorithm="rsa-sha256",signature="AAAA",version="1",',
        'Signature keyId="a" algorithm="rsa-sha256",signature="AAAA",version="1"',
        'Signature keyId="a",algorithm="rsa-sha256",signature="AAAA",version="1",headers="Date"',
        'Signature keyId="a",algorithm="rsa-sha256",signature="AAAA",version="1",headers="a  b"',
        'Signature keyId="a",algorithm="rsa-sha256",signature="AAAA",version="1",headers="a a"',
    ],
)
def test_parse_authorization_rejects_malformed(value):
    with pytest.raises(SignatureError):
        parse_authorization(value)


def test_parse_authorization_accepts_any_parameter_order():
    params = parse_authorization(
        'Signature signature="AAAA",headers="date host",version="1",algorithm="rsa-sha256",'
        'keyId="ST$a.b.c"'
    )
    assert (params.key_id, params.headers, params.signature) == (
        "ST$a.b.c",
        ("date", "host"),
        b"\0\0\0",
    )
    # draft-cavage: no headers parameter means only "date" is signed.
    assert parse_authorization(
        'Signature keyId="k",algorithm="rsa-sha256",signature="AAAA",version="1"'
    ).headers == ("date",)


def test_issued_tokens_carry_the_session_key_as_oci_does(env):
    _, claims, _, _ = jws.decode_unverified(env.session.token)
    assert isinstance(claims["jwk"], str)  # OCI stores the JWK as a JSON string
    jwk = json.loads(claims["jwk"])
    assert jwk["kty"] == "RSA" and "=" not in jwk["n"]
    assert (
        jws.public_key_from_jwk(jwk).public_numbers() == env.session.key.public_key.public_numbers()
    )
    url_safe = {**jwk, "n": jwk["n"].replace("+", "-").replace("/", "_")}
    assert (
        jws.public_key_from_jwk(url_safe).public_numbers()
        == env.session.key.public_key.public_numbers()
    )
