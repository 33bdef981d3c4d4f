"""Generated OCI credentials load through the real SDK and rotate the way production files do."""

from __future__ import annotations

import hashlib
import subprocess

import oci
import pytest
from cryptography.hazmat.primitives import serialization
from oci.auth.signers import SecurityTokenSigner

from testkit import jws
from testkit.cavage import KeyRegistry, verify_request
from testkit.oci_credentials import (
    TokenIssuer,
    api_key_fingerprint,
    make_api_key_profile,
    make_resource_principal_v22,
    make_security_token_profile,
)
from tests.support.sdk_signing import SdkRequest, sign_with_sdk

URL = "https://md.example.com/ocid1.md/predict/metrics"


@pytest.fixture
def registry_and_issuer():
    registry, issuer = KeyRegistry(), TokenIssuer()
    issuer.register_with(registry)
    return registry, issuer


def _claims(headers) -> dict:
    token = headers["authorization"].split('keyId="ST$', 1)[1].split('"', 1)[0]
    return jws.decode_unverified(token)[1]


def test_fingerprint_is_md5_of_public_der(tmp_path):
    api = make_api_key_profile(tmp_path)
    der = api.key.public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert api.fingerprint.replace(":", "") == hashlib.md5(der).hexdigest()
    openssl = subprocess.run(
        ["openssl", "pkey", "-pubin", "-in", str(api.key.public_path), "-outform", "DER"],
        capture_output=True,
        check=False,
    )
    if openssl.returncode == 0:  # cross-check with openssl where present
        assert hashlib.md5(openssl.stdout).hexdigest() == api.fingerprint.replace(":", "")
    assert api_key_fingerprint(api.key.public_key) == api.fingerprint


def test_api_key_profile_passes_sdk_validation(tmp_path):
    api = make_api_key_profile(tmp_path, passphrase="s3cret")
    make_api_key_profile(tmp_path, profile="SECOND", config_path=api.config_path)
    config = oci.config.from_file(str(api.config_path), "DEFAULT")
    oci.config.validate_config(config)
    assert config["pass_phrase"] == "s3cret"
    assert b"ENCRYPTED" in api.key.private_path.read_bytes()
    assert oci.config.from_file(str(api.config_path), "SECOND")["user"] != api.user
    assert (api.config_path.stat().st_mode & 0o077) == 0
    signer = oci.signer.Signer.from_config(config)
    registry = KeyRegistry()
    api.register_with(registry)
    headers = sign_with_sdk(signer, "GET", URL)
    assert verify_request("GET", SdkRequest("GET", URL).path_url, headers, registry).key_id == (
        api.key_id
    )


def test_security_token_profile_layout_and_rotation(tmp_path, registry_and_issuer):
    registry, issuer = registry_and_issuer
    session = make_security_token_profile(tmp_path, issuer, ttl_seconds=600)
    config = oci.config.from_file(str(session.config_path), "SESSION")
    assert set(config) >= {"fingerprint", "key_file", "tenancy", "region", "security_token_file"}
    assert config["security_token_file"] == str(session.token_path)
    first = session.token
    assert jws.decode_unverified(first)[1]["sub"] == session.user

    second = session.rotate(ttl_seconds=3600)
    assert session.token_path.read_text() == second != first
    key = oci.signer.load_private_key_from_file(config["key_file"])
    headers = sign_with_sdk(SecurityTokenSigner(second, key), "GET", URL)
    assert (
        verify_request("GET", "/ocid1.md/predict/metrics", headers, registry).claims["jti"]
        == (jws.decode_unverified(second)[1]["jti"])
    )

    old_key_pem = session.key.private_path.read_bytes()
    session.rotate(new_key=True)
    assert session.key.private_path.read_bytes() != old_key_pem
    assert session.key.private_path == session.token_path.parent / "oci_api_key.pem"


def test_resource_principal_file_mode_rereads_rotated_token(
    tmp_path, registry_and_issuer, monkeypatch
):
    registry, issuer = registry_and_issuer
    rp = make_resource_principal_v22(tmp_path, issuer, mode="file", ttl_seconds=3600)
    assert rp.env["OCI_RESOURCE_PRINCIPAL_VERSION"] == "2.2"
    assert rp.env["OCI_RESOURCE_PRINCIPAL_RPST"].startswith("/")
    for name, value in rp.env.items():
        monkeypatch.setenv(name, value)
    signer = oci.auth.signers.get_resource_principals_signer()
    assert signer.region == "us-ashburn-1"
    first_jti = _claims(sign_with_sdk(signer, "GET", URL))["jti"]

    rotated = rp.rotate(ttl_seconds=3600)
    # Not near expiry: get_security_token() keeps the cached token; signing still uses it.
    signer.get_security_token()
    assert _claims(sign_with_sdk(signer, "GET", URL))["jti"] == first_jti
    # An explicit refresh re-reads the file.
    assert signer.refresh_security_token() == rotated
    headers = sign_with_sdk(signer, "GET", URL)
    verified = verify_request("GET", "/ocid1.md/predict/metrics", headers, registry)
    assert verified.claims["jti"] == jws.decode_unverified(rotated)[1]["jti"]


def test_resource_principal_near_expiry_refreshes_on_get_security_token(
    tmp_path, registry_and_issuer, monkeypatch
):
    _, issuer = registry_and_issuer
    rp = make_resource_principal_v22(tmp_path, issuer, mode="file", ttl_seconds=30)
    for name, value in rp.env.items():
        monkeypatch.setenv(name, value)
    signer = oci.auth.signers.get_resource_principals_signer()
    rotated = rp.rotate(ttl_seconds=3600)
    # Calling the signer does NOT check expiry: it still signs with the 30 s token.
    assert _claims(sign_with_sdk(signer, "GET", URL))["exp"] < _claims_of(rotated)["exp"]
    # get_security_token() treats a token within 60 s of exp as expired and re-reads the file.
    assert signer.get_security_token() == rotated
    assert _claims(sign_with_sdk(signer, "GET", URL))["jti"] == _claims_of(rotated)["jti"]


def _claims_of(token: str) -> dict:
    return jws.decode_unverified(token)[1]


def test_resource_principal_literal_mode_with_passphrase(
    tmp_path, registry_and_issuer, monkeypatch
):
    registry, issuer = registry_and_issuer
    rp = make_resource_principal_v22(tmp_path, issuer, passphrase="pw", region="phx")
    assert rp.env["OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM"].startswith("-----BEGIN ENCRYPTED")
    for name, value in rp.env.items():
        monkeypatch.setenv(name, value)
    signer = oci.auth.signers.get_resource_principals_signer()
    assert signer.region == "us-phoenix-1"  # short region names are expanded
    headers = sign_with_sdk(signer, "GET", URL)
    assert verify_request("GET", "/ocid1.md/predict/metrics", headers, registry).claims[
        "res_id"
    ] == (rp.resource_id)
    with pytest.raises(RuntimeError):
        rp.rotate()


def test_sdk_bug_passphrase_file_in_rp_file_mode(tmp_path, registry_and_issuer, monkeypatch):
    """Canary: oci 2.189.0 opens the passphrase file with mode "b" and crashes. If this starts
    failing, the SDK fixed it and the app may support encrypted RP keys in file mode."""
    _, issuer = registry_and_issuer
    rp = make_resource_principal_v22(tmp_path, issuer, mode="file", passphrase="pw")
    for name, value in rp.env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match="create/read/write/append mode"):
        oci.auth.signers.get_resource_principals_signer()
