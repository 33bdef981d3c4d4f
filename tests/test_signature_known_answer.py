"""Oracle's published request-signature example, verified and reproduced byte for byte.

The vector (tests/data/oci-request-signature-vector.json) is the "Test Values" of OCI's "Request
Signatures" page: a published test key, a GET and a POST request, and their signatures. This pins
two independent things to Oracle's own answer rather than to each other:

* the draft-cavage verifier the stand-ins use (testkit/cavage.py) accepts the published signatures;
* the proxy's signing path (app/signing.py's `OciSigningAuth` over the oci SDK signer that
  app/credentials.py builds for an API key) produces the published GET signature exactly.

The proxy only ever sends GET and signs no body headers, so the POST example is reproduced with
the oci SDK signer the proxy wraps, asked to sign the body headers the example shows.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from oci.signer import Signer

from app.credentials import WireRequest, build_credentials
from app.oci_config import AuthMode, resolve_auth
from app.signing import OciSigningAuth
from testkit.cavage import KeyRegistry, SignatureError, parse_authorization, verify_request

VECTOR = json.loads(
    (Path(__file__).parent / "data" / "oci-request-signature-vector.json").read_text()
)
SIGNED_AT = datetime(2014, 1, 5, 21, 31, 40, tzinfo=UTC)


def _key_id() -> str:
    return f"{VECTOR['tenancy']}/{VECTOR['user']}/{VECTOR['fingerprint']}"


def _authorization(signed_headers: str, signature: str) -> str:
    return (
        f'Signature version="1",headers="{signed_headers}",keyId="{_key_id()}",'
        f'algorithm="rsa-sha256",signature="{signature}"'
    )


@pytest.fixture(scope="module")
def registry() -> KeyRegistry:
    private_key = serialization.load_pem_private_key(
        VECTOR["private_key_pem"].encode(), password=None
    )
    trusted = KeyRegistry()
    trusted.add_api_key(
        VECTOR["tenancy"], VECTOR["user"], VECTOR["fingerprint"], private_key.public_key()
    )
    return trusted


@pytest.fixture(scope="module")
def credentials_files(tmp_path_factory) -> tuple[Path, Path]:
    """An API-key profile holding the published key: (config file, key file)."""
    folder = tmp_path_factory.mktemp("oci")
    key_file = folder / "published-test-key.pem"
    key_file.write_text(VECTOR["private_key_pem"])
    config = folder / "config"
    config.write_text(
        "[DEFAULT]\n"
        f"user={VECTOR['user']}\nfingerprint={VECTOR['fingerprint']}\n"
        f"tenancy={VECTOR['tenancy']}\nregion=us-phoenix-1\nkey_file={key_file}\n"
    )
    return config, key_file


@pytest.fixture(scope="module")
def credentials(credentials_files):
    """The credentials the proxy builds from that profile (app/credentials.py)."""
    config, key_file = credentials_files
    problems: list[str] = []
    auth = resolve_auth(
        AuthMode.API_KEY,
        has_targets=True,
        config_file=str(config),
        profile="DEFAULT",
        environ={},
        problems=problems,
    )
    assert problems == []
    assert auth.profile_key is not None and auth.profile_key.key_file == key_file
    return build_credentials(auth)


def _get_headers(signature: str) -> dict[str, str]:
    return {
        "date": VECTOR["date"],
        "host": "iaas.us-phoenix-1.oraclecloud.com",
        "authorization": _authorization(VECTOR["get"]["signed_headers"], signature),
    }


def _post_headers(signature: str) -> dict[str, str]:
    post = VECTOR["post"]
    return {
        "date": VECTOR["date"],
        "host": "iaas.us-phoenix-1.oraclecloud.com",
        "content-length": post["content_length"],
        "content-type": post["content_type"],
        "x-content-sha256": post["x_content_sha256"],
        "authorization": _authorization(post["signed_headers"], post["signature"]),
    }


def _assert_same_signature(authorization: str, example: dict[str, str]) -> None:
    """Every Authorization parameter equals the published one; the signature byte for byte.

    Only the parameters' order may differ: the Python SDK writes them alphabetically, the page
    writes `version,headers,keyId,algorithm,signature`; draft-cavage gives order no meaning.
    """
    ours = parse_authorization(authorization)
    published = parse_authorization(_authorization(example["signed_headers"], example["signature"]))
    assert ours.signature == published.signature
    assert ours == published


def _target(url: str) -> str:
    return httpx.URL(url).raw_path.decode("ascii")


def test_the_verifier_accepts_the_published_get_signature(registry):
    verified = verify_request(
        "GET",
        _target(VECTOR["get"]["url"]),
        _get_headers(VECTOR["get"]["signature"]),
        registry,
        now=SIGNED_AT,
    )
    assert verified.signing_string == VECTOR["get"]["signing_string"]


def test_the_verifier_accepts_the_published_post_signature(registry):
    post = VECTOR["post"]
    verified = verify_request(
        "POST",
        _target(post["url"]),
        _post_headers(post["signature"]),
        registry,
        body=post["body"].encode(),
        now=SIGNED_AT,
    )
    assert verified.signing_string == post["signing_string"]


def test_the_verifier_refuses_the_published_signature_on_another_request(registry):
    """The known answer is only worth something if a near miss fails."""
    tampered = _target(VECTOR["get"]["url"]).replace("TeamXInstances", "TeamYInstances")
    with pytest.raises(SignatureError, match="does not verify"):
        verify_request(
            "GET", tampered, _get_headers(VECTOR["get"]["signature"]), registry, now=SIGNED_AT
        )


def test_the_proxy_signing_path_reproduces_the_published_get_signature(
    credentials, registry, monkeypatch
):
    # sign_request stamps the current time; pin it to the example's Date (the only varying input).
    monkeypatch.setattr(email.utils, "formatdate", lambda *args, **kwargs: VECTOR["date"])
    request = httpx.Request("GET", VECTOR["get"]["url"])
    flow = OciSigningAuth(credentials, refresher=None).async_auth_flow(request)
    # The request as it would go on the wire; nothing is sent.
    signed = asyncio.run(anext(flow))  # type: ignore[arg-type]

    assert signed.headers["date"] == VECTOR["date"]
    assert signed.headers["host"] == "iaas.us-phoenix-1.oraclecloud.com"
    _assert_same_signature(signed.headers["authorization"], VECTOR["get"])
    verify_request(
        "GET", signed.url.raw_path.decode(), list(signed.headers.items()), registry, now=SIGNED_AT
    )


def test_the_sdk_signer_reproduces_the_published_post_signature(credentials_files):
    """POST is reproduced with the oci SDK signer the proxy wraps, not with the proxy's own
    `Credentials.sign`: that one passes `enforce_content_headers=False` (the proxy only sends
    GET) and so signs `date (request-target) host` for any method, never the body headers."""
    _config, key_file = credentials_files
    post = VECTOR["post"]
    signer = Signer(
        tenancy=VECTOR["tenancy"],
        user=VECTOR["user"],
        fingerprint=VECTOR["fingerprint"],
        private_key_file_location=str(key_file),
    )
    headers = {
        "date": VECTOR["date"],
        "host": "iaas.us-phoenix-1.oraclecloud.com",
        "content-length": post["content_length"],
        "content-type": post["content_type"],
        "x-content-sha256": post["x_content_sha256"],
    }
    wire = WireRequest(
        method="POST",
        url=post["url"],
        headers=headers,
        path_url=_target(post["url"]),
        body=post["body"].encode(),
    )
    signed = signer.do_request_sign(wire, enforce_content_headers=True)
    _assert_same_signature(signed.headers["authorization"], post)
