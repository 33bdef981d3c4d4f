"""The IMDS and federation stand-ins let the real InstancePrincipalsSecurityTokenSigner work offline."""

from __future__ import annotations

import json

import httpx
import oci
import pytest
from oci.auth.signers import InstancePrincipalsSecurityTokenSigner

from testkit import jws
from testkit.cavage import KeyKind, KeyRegistry, verify_request
from testkit.oci_credentials import TokenIssuer
from tests.support.instance_principal import (
    METADATA_AUTH,
    InstanceIdentity,
    InstancePrincipalStandIn,
)
from tests.support.sdk_signing import sign_with_sdk

URL = "https://md.example.com/ocid1.md/predict/metrics"
TARGET = "/ocid1.md/predict/metrics"


@pytest.fixture(scope="module")
def issuer_and_identity():
    """Key generation is the slow part; share it, keep the servers per test."""
    return TokenIssuer(), InstanceIdentity.create()


@pytest.fixture
def stand_in(monkeypatch, issuer_and_identity):
    issuer, identity = issuer_and_identity
    with InstancePrincipalStandIn(issuer, identity=identity) as ip:
        for name, value in ip.env.items():
            monkeypatch.setenv(name, value)
        yield ip


@pytest.fixture
def registry(stand_in):
    registry = KeyRegistry()
    stand_in.register_with(registry)
    return registry


def _jwk_n(token: str) -> str:
    return json.loads(jws.decode_unverified(token)[1]["jwk"])["n"]


def test_signer_constructs_and_signs_against_stand_ins(stand_in, registry):
    signer = InstancePrincipalsSecurityTokenSigner(**stand_in.signer_kwargs())
    assert signer.region == "us-ashburn-1"  # IMDS answered "iad"
    assert signer.tenancy_id == stand_in.identity.tenancy  # parsed from OU=opc-tenant:
    assert signer.METADATA_URL_BASE == stand_in.metadata.metadata_base_url
    assert stand_in.federation.calls == 1

    verified = verify_request("GET", TARGET, sign_with_sdk(signer, "GET", URL), registry)
    assert verified.kind is KeyKind.TOKEN
    assert verified.claims["sub"] == stand_in.identity.instance_id
    assert verified.claims["ptype"] == "instance"
    assert verified.claims["fprint"] == stand_in.identity.leaf_fingerprint

    assert set(stand_in.metadata.paths()) == {
        "/opc/v2/instance/region",
        "/opc/v2/identity/cert.pem",
        "/opc/v2/identity/key.pem",
        "/opc/v2/identity/intermediate.pem",
    }
    assert all(h.get("Authorization") == METADATA_AUTH for _, h in stand_in.metadata.requests)
    (call,) = stand_in.federation.history
    assert (
        call.key_id == f"{stand_in.identity.tenancy}/fed-x509/{stand_in.identity.leaf_fingerprint}"
    )


def test_refresh_calls_federation_again_with_a_new_session_key(stand_in, registry):
    signer = InstancePrincipalsSecurityTokenSigner(**stand_in.signer_kwargs())
    assert stand_in.federation.calls == 1
    sign_with_sdk(signer, "GET", URL)  # token valid for 20 min: no refresh
    assert stand_in.federation.calls == 1

    signer.refresh_security_token()
    assert stand_in.federation.calls == 2
    first, second = stand_in.federation.tokens
    assert _jwk_n(first) != _jwk_n(second)  # each refresh binds a freshly generated session key
    verified = verify_request("GET", TARGET, sign_with_sdk(signer, "GET", URL), registry)
    assert verified.claims["jti"] == jws.decode_unverified(second)[1]["jti"]


def test_short_lived_tokens_refresh_on_every_signer_call(stand_in, registry):
    stand_in.federation.token_ttl_seconds = 30  # inside the SDK's 60 s expiry jitter
    signer = InstancePrincipalsSecurityTokenSigner(**stand_in.signer_kwargs())
    sign_with_sdk(signer, "GET", URL, via_call=False)  # do_request_sign: no refresh
    assert stand_in.federation.calls == 1
    headers = sign_with_sdk(signer, "GET", URL)  # __call__: refresh via get_security_token()
    assert stand_in.federation.calls == 2
    verify_request("GET", TARGET, headers, registry)


def test_leaf_rotation_is_picked_up_on_refresh(stand_in, registry):
    signer = InstancePrincipalsSecurityTokenSigner(**stand_in.signer_kwargs())
    old_fp = stand_in.identity.leaf_fingerprint
    stand_in.identity.rotate_leaf()
    signer.refresh_security_token()
    assert stand_in.federation.history[-1].key_id.endswith(stand_in.identity.leaf_fingerprint)
    assert stand_in.identity.leaf_fingerprint != old_fp
    verify_request("GET", TARGET, sign_with_sdk(signer, "GET", URL), registry)


def test_federation_endpoint_rejects_unsigned_requests(stand_in):
    response = httpx.post(stand_in.federation.endpoint, json={"certificate": "x"})
    assert response.status_code == 401
    assert stand_in.federation.calls == 0
    assert stand_in.federation.history[-1].error


def test_metadata_requires_the_oracle_bearer_header(stand_in):
    url = f"{stand_in.metadata.metadata_base_url}/instance/region"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": METADATA_AUTH}).text == "iad"


def test_failures_surface_fast_without_retries(stand_in):
    stand_in.metadata.fail_with = 500
    with pytest.raises(oci.exceptions.ServiceError):
        InstancePrincipalsSecurityTokenSigner(**stand_in.signer_kwargs())
    stand_in.metadata.fail_with = None
    stand_in.federation.fail_with = 503
    with pytest.raises(oci.exceptions.ServiceError) as info:
        InstancePrincipalsSecurityTokenSigner(**stand_in.signer_kwargs())
    assert info.value.status == 503
