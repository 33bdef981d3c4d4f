"""Signing, end to end over real sockets, checked by an independent draft-cavage verifier.

The proxy app signs with the real oci SDK signers built by app.credentials; SignedUpstream (a
real HTTP server on loopback) verifies each request with testkit/cavage.py, which was
written from the specification and never calls the SDK.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager

import httpx
import pytest
import respx

from app.credentials import WireRequest, build_credentials
from app.oci_config import AuthMode
from app.proxy_metrics import create_proxy_metrics
from app.refusal import is_refused, may_be_refused
from app.server import create_app
from app.settings import load_settings
from app.signing import OciSigningAuth, TokenRefresher
from testkit.cavage import KeyRegistry
from testkit.oci_credentials import (
    TokenIssuer,
    make_api_key_profile,
    make_resource_principal_v22,
    make_security_token_profile,
)
from tests.support.instance_principal import InstancePrincipalStandIn
from tests.support.signed_upstream import SignedUpstream


@asynccontextmanager
async def proxy_for(env, *, instance_principal_options=None):
    settings = load_settings(env)
    credentials = build_credentials(
        settings.proxy.auth, instance_principal_options=instance_principal_options
    )
    app = create_app(settings, credentials)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://proxy"
        ) as client:
            client.app = app
            yield client


def scrape(env, count=1, *, between=None, **kwargs):
    async def go():
        async with proxy_for(env, **kwargs) as client:
            responses = []
            for index in range(count):
                if between and index:
                    await between(client)
                responses.append(
                    await client.get("/targets/md/metrics", headers={"accept-encoding": "gzip"})
                )
            return responses

    return asyncio.run(go())


@pytest.fixture
def registry():
    return KeyRegistry()


@pytest.fixture
def issuer(registry):
    token_issuer = TokenIssuer()
    token_issuer.register_with(registry)
    return token_issuer


def test_api_key_signature_verifies_and_body_is_relayed(tmp_path, registry):
    creds = make_api_key_profile(tmp_path)
    creds.register_with(registry)
    with SignedUpstream(registry) as upstream:
        env = {"TARGETS": f"md={upstream.url}", "OCI_CONFIG_FILE": str(creds.config_path)}
        (response,) = scrape(env)
        assert response.status_code == 200, response.text
        assert response.headers["content-encoding"] == "gzip"
        assert b"vllm:" in response.content
        (request,) = upstream.requests
        assert request.verified and request.key_id == creds.key_id
        assert request.target == upstream.metrics_path
        assert request.header("content-length") == "0"
        assert upstream.unexpected_requests() == []


def test_passphrase_protected_api_key(tmp_path, registry):
    creds = make_api_key_profile(tmp_path, passphrase="open sesame")
    creds.register_with(registry)
    with SignedUpstream(registry) as upstream:
        (response,) = scrape(
            {"TARGETS": f"md={upstream.url}", "OCI_CONFIG_FILE": str(creds.config_path)}
        )
        assert response.status_code == 200 and upstream.requests[0].verified


def test_unknown_key_is_refused_and_reported_with_the_policy_hint(tmp_path, registry):
    creds = make_api_key_profile(tmp_path)  # not registered: the "gateway" does not know it
    with SignedUpstream(registry) as upstream:
        (response,) = scrape(
            {"TARGETS": f"md={upstream.url}", "OCI_CONFIG_FILE": str(creds.config_path)}
        )
        assert response.status_code == 502
        assert "404 NotAuthorizedOrNotFound" in response.text
        assert "{DATA_SCIENCE_MODEL_DEPLOYMENT_PREDICT}" in response.text
        assert not upstream.requests[0].verified
        # API keys do not refresh: exactly one attempt, no retry storm.
        assert len(upstream.requests) == 1


def test_signed_path_is_exactly_the_path_on_the_wire(tmp_path, registry):
    creds = make_api_key_profile(tmp_path)
    creds.register_with(registry)
    # %7E must stay %7E: converting through requests.prepare() would sign "~" and fail.
    with SignedUpstream(
        registry, prefix="/ocid1.datasciencemodeldeployment.oc1.iad.aa%7Ebb"
    ) as upstream:
        env = {"TARGETS": f"md={upstream.metrics_url}", "OCI_CONFIG_FILE": str(creds.config_path)}
        (response,) = scrape(env)
        assert response.status_code == 200, response.text
        assert (
            upstream.requests[0].target
            == "/ocid1.datasciencemodeldeployment.oc1.iad.aa%7Ebb/predict/metrics"
        )
        assert upstream.requests[0].verified


def test_session_token_signature_verifies(tmp_path, registry, issuer):
    creds = make_security_token_profile(tmp_path, issuer)
    with SignedUpstream(registry) as upstream:
        env = {
            "TARGETS": f"md={upstream.url}",
            "OCI_CONFIG_FILE": str(creds.config_path),
            "OCI_CONFIG_PROFILE": creds.profile,
        }
        settings = load_settings(env)
        assert settings.proxy.auth.mode.value == "security_token"
        (response,) = scrape(env)
        assert response.status_code == 200, response.text
        request = upstream.requests[0]
        assert request.verified and request.key_id.startswith("ST$")


def test_session_token_rotated_on_disk_is_picked_up_after_the_old_one_expires(
    tmp_path, registry, issuer
):
    creds = make_security_token_profile(tmp_path, issuer, ttl_seconds=2)
    with SignedUpstream(registry) as upstream:
        env = {
            "TARGETS": f"md={upstream.url}",
            "OCI_CONFIG_FILE": str(creds.config_path),
            "OCI_CONFIG_PROFILE": creds.profile,
            "TOKEN_REFRESH_CHECK_SECONDS": "3600",  # only the refusal path can pick it up
        }
        old_token = creds.token

        async def rotate_and_expire(_client):
            creds.rotate(ttl_seconds=3600)  # as `oci session refresh` would
            await asyncio.sleep(2.5)  # the token the proxy holds is now expired

        first, second = scrape(env, 2, between=rotate_and_expire)
        assert first.status_code == 200
        assert second.status_code == 200, second.text
        attempts = upstream.requests[1:]
        assert [bool(r.verified) for r in attempts] == [False, True]  # refused once, retried once
        assert attempts[0].key_id == f"ST${old_token}"
        assert attempts[1].key_id == f"ST${creds.token}"


def test_session_token_rotation_is_picked_up_by_the_background_check(tmp_path, registry, issuer):
    creds = make_security_token_profile(tmp_path, issuer)
    with SignedUpstream(registry) as upstream:
        env = {
            "TARGETS": f"md={upstream.url}",
            "OCI_CONFIG_FILE": str(creds.config_path),
            "OCI_CONFIG_PROFILE": creds.profile,
            "TOKEN_REFRESH_CHECK_SECONDS": "0.2",
        }

        async def rotate(client):
            creds.rotate()
            await asyncio.sleep(0.6)

        responses = scrape(env, 2, between=rotate)
        assert [r.status_code for r in responses] == [200, 200]
        assert [bool(r.verified) for r in upstream.requests] == [True, True]
        assert upstream.requests[1].key_id == f"ST${creds.token}" != upstream.requests[0].key_id


@pytest.mark.parametrize("mode", ["literal", "file"])
def test_resource_principal_v22_signature_verifies(tmp_path, registry, issuer, monkeypatch, mode):
    creds = make_resource_principal_v22(tmp_path, issuer, mode=mode)
    for name, value in creds.env.items():
        monkeypatch.setenv(name, value)
    with SignedUpstream(registry) as upstream:
        env = {"TARGETS": f"md={upstream.url}", **creds.env}
        assert load_settings(env).proxy.auth.mode.value == "resource_principal"
        (response,) = scrape(env)
        assert response.status_code == 200, response.text
        request = upstream.requests[0]
        assert request.verified
        assert request.key_id == f"ST${creds.token}"


def test_resource_principal_token_expiring_is_renewed_from_file(
    tmp_path, registry, issuer, monkeypatch
):
    creds = make_resource_principal_v22(tmp_path, issuer, mode="file", ttl_seconds=2)
    for name, value in creds.env.items():
        monkeypatch.setenv(name, value)
    with SignedUpstream(registry) as upstream:
        env = {"TARGETS": f"md={upstream.url}", "TOKEN_REFRESH_CHECK_SECONDS": "3600", **creds.env}

        async def renew_and_expire(_client):
            creds.rotate(ttl_seconds=3600)  # the platform writes a fresh RPST
            await asyncio.sleep(2.5)

        first, second = scrape(env, 2, between=renew_and_expire)
        assert [first.status_code, second.status_code] == [200, 200], second.text
        assert (
            upstream.requests[-1].verified and upstream.requests[-1].key_id == f"ST${creds.token}"
        )


def test_instance_principal_builds_signs_and_refreshes_against_stand_ins(
    registry, issuer, monkeypatch
):
    with InstancePrincipalStandIn(issuer) as stand_in, SignedUpstream(registry) as upstream:
        for name, value in stand_in.env.items():
            monkeypatch.setenv(name, value)
        options = stand_in.signer_kwargs()
        endpoint = options.pop("federation_endpoint")
        env = {
            "TARGETS": f"md={upstream.url}",
            "OCI_AUTH": "instance_principal",
            "OCI_FEDERATION_ENDPOINT": endpoint,
            "TOKEN_REFRESH_CHECK_SECONDS": "3600",
        }
        calls_before = stand_in.federation.calls

        async def force_refresh(client):
            refresher = client.app.state.refresher
            assert await refresher.refresh(force=True) is True

        first, second = scrape(env, 2, between=force_refresh, instance_principal_options=options)
        assert [first.status_code, second.status_code] == [200, 200], second.text
        assert all(r.verified for r in upstream.requests)
        assert stand_in.federation.calls >= calls_before + 2  # construction, then the refresh
        assert upstream.requests[0].key_id != upstream.requests[1].key_id


def test_no_signing_in_none_mode_and_no_inbound_credentials_forwarded(registry):
    with SignedUpstream(registry) as upstream:

        async def go():
            async with proxy_for({"TARGETS": f"md={upstream.url}", "OCI_AUTH": "none"}) as client:
                return await client.get(
                    "/targets/md/metrics",
                    headers={"authorization": 'Signature keyId="stolen"', "cookie": "a=b"},
                )

        response = asyncio.run(go())
        assert response.status_code == 502  # the fixture wants a signature; none was sent
        request = upstream.requests[0]
        assert request.authorization is None
        assert request.header("cookie") is None


def test_refresh_is_rate_limited_after_repeated_refusals(tmp_path, registry, issuer):
    creds = make_security_token_profile(tmp_path, issuer)
    issuer_gone = KeyRegistry()  # this gateway trusts no token at all
    with SignedUpstream(issuer_gone) as upstream:
        env = {
            "TARGETS": f"md={upstream.url}",
            "OCI_CONFIG_FILE": str(creds.config_path),
            "OCI_CONFIG_PROFILE": creds.profile,
        }
        started = time.monotonic()
        responses = scrape(env, 5)
        assert all(r.status_code == 502 for r in responses)
        # The token never changes, so no retry happens at all: one request per scrape.
        assert len(upstream.requests) == 5
        assert time.monotonic() - started < 5


# --- the refusal classifier and the one retry ----------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "refused"),
    [
        (401, b"", True),
        (404, b'{"code":"NotAuthorizedOrNotFound","message":"Authorization failed"}', True),
        (404, b'{"detail":"Not Found"}', False),
        (403, b'{"code":"NotAuthorizedOrNotFound"}', False),
        (500, b"", False),
        (200, b"NotAuthorizedOrNotFound", False),
    ],
)
def test_one_classifier_decides_what_a_refusal_is(status, body, refused):
    assert is_refused(status, body) is refused
    if refused:
        assert may_be_refused(status)


class RenewableCredentials:
    """A token credential whose every renewal brings a new key id (signs with a visible tag)."""

    mode = AuthMode.SECURITY_TOKEN

    def __init__(self) -> None:
        self.generation = 1

    @property
    def key_id(self) -> str:
        return f"token-{self.generation}"

    def sign(self, request: WireRequest) -> str:
        return f'Signature keyId="{self.key_id}"'

    def refresh(self, *, force: bool) -> bool:
        self.generation += 1
        return True


class InChunks(httpx.AsyncByteStream):
    """A body arriving in several chunks, as from a socket."""

    def __init__(self, body: bytes, size: int) -> None:
        self._chunks = [body[i : i + size] for i in range(0, len(body), size)]

    async def __aiter__(self):
        for chunk in self._chunks:
            yield chunk


@pytest.mark.parametrize(
    ("status", "body", "attempts"),
    [
        (401, b"", 2),
        (404, b'{"code":"NotAuthorizedOrNotFound","message":"x"}' + b" " * 9000, 2),
        (404, b'{"detail":"Not Found"}' + b" " * 9000, 1),
    ],
)
def test_only_a_refusal_is_retried_once_and_the_body_stays_whole(status, body, attempts):
    credentials = RenewableCredentials()
    refresher = TokenRefresher(credentials, create_proxy_metrics(), check_every_seconds=3600)
    auth = OciSigningAuth(credentials, refresher)

    async def go():
        with respx.mock(assert_all_mocked=True) as mock:
            route = mock.get("https://md.example/metrics").mock(
                side_effect=lambda _request: httpx.Response(status, stream=InChunks(body, 1000))
            )
            async with httpx.AsyncClient(auth=auth) as client:
                request = client.build_request("GET", "https://md.example/metrics")
                response = await client.send(request, stream=True)
                raw = b"".join([chunk async for chunk in response.aiter_raw()])
                await response.aclose()
                return route.calls, raw

    calls, raw = asyncio.run(go())
    assert len(calls) == attempts
    signed = [call.request.headers["authorization"] for call in calls]
    assert signed == [f'Signature keyId="token-{n}"' for n in range(1, attempts + 1)]
    assert raw == body  # what the classifier peeked at is still relayed, whole
