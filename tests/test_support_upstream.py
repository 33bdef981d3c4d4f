"""SignedUpstream behaves like an OCI model deployment: strict auth, faithful records, faults."""

from __future__ import annotations

import concurrent.futures
import time
from types import SimpleNamespace

import httpx
import oci
import pytest

from testkit.cavage import KeyKind, KeyRegistry
from testkit.oci_credentials import make_api_key_profile
from tests.support.sdk_signing import sign_with_sdk
from tests.support.signed_upstream import (
    GARBAGE,
    METRICS_CONTENT_TYPE,
    NOT_AUTHORIZED,
    FaultMode,
    SignedUpstream,
    default_metrics_body,
)


@pytest.fixture(scope="module")
def creds(tmp_path_factory):
    directory = tmp_path_factory.mktemp("upstream")
    registry = KeyRegistry()
    api = make_api_key_profile(directory)
    api.register_with(registry)
    signer = oci.signer.Signer.from_config(oci.config.from_file(str(api.config_path), "DEFAULT"))
    with httpx.Client() as client:  # one client: building SSL contexts per request is slow
        yield SimpleNamespace(registry=registry, api=api, signer=signer, client=client)


@pytest.fixture
def upstream(creds):
    with SignedUpstream(creds.registry) as server:
        yield server


def _get(creds, url, *, extra=None, content_length=True, client=None, **kwargs):
    headers = {"content-length": "0"} if content_length else {}
    headers = sign_with_sdk(creds.signer, "GET", url, headers=headers)
    headers.update(extra or {})
    return (client or creds.client).get(url, headers=headers, **kwargs)


def test_signed_scrape_gets_metrics_gzip_when_accepted(creds, upstream):
    response = _get(creds, upstream.metrics_url, extra={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-type"] == METRICS_CONTENT_TYPE
    assert response.headers["content-encoding"] == "gzip"
    assert response.content == default_metrics_body()  # httpx gunzips
    plain = _get(creds, upstream.metrics_url, extra={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == default_metrics_body()
    refused = _get(creds, upstream.metrics_url, extra={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers

    first = upstream.requests[0]
    assert first.status == 200 and first.error is None
    assert first.verified.kind is KeyKind.API_KEY
    assert first.key_id == creds.api.key_id
    assert first.authorization.startswith("Signature ")
    assert upstream.unexpected_requests() == []


def test_gzip_disabled_and_custom_body(creds):
    with SignedUpstream(creds.registry, gzip=False, body_factory=lambda: b"up 1\n") as server:
        response = _get(creds, server.metrics_url, extra={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in response.headers
        assert response.content == b"up 1\n"


def test_unsigned_or_foreign_requests_get_not_authorized_404(creds, upstream):
    response = creds.client.get(
        upstream.metrics_url, headers={"content-length": "0", "Cookie": "a=b"}
    )
    assert response.status_code == 404
    assert response.json() == NOT_AUTHORIZED
    (record,) = upstream.requests
    assert record.error == "missing Authorization header"
    assert record.header("cookie") == "a=b"  # recorded, so leak assertions can see it
    assert record.key_id is None

    # Signed for another host (what a proxy that forgets to re-sign would send).
    foreign = "https://modeldeployment.example.com" + upstream.metrics_path
    headers = sign_with_sdk(creds.signer, "GET", foreign, headers={"content-length": "0"})
    assert creds.client.get(upstream.metrics_url, headers=headers).status_code == 404
    assert upstream.requests[-1].error == "host 'modeldeployment.example.com' is not this server"
    del headers["host"]  # the client now sends Host: 127.0.0.1:<port>, which was not signed
    assert creds.client.get(upstream.metrics_url, headers=headers).status_code == 404
    assert upstream.requests[-1].error == "signature does not verify"


def test_unknown_paths_are_404_and_reported_unexpected(creds, upstream):
    response = _get(creds, upstream.url + "/predict")
    assert response.status_code == 404 and response.json()["code"] == "NotAuthorizedOrNotFound"
    response = _get(creds, upstream.metrics_url + "?x=1")
    assert response.status_code == 404
    assert [r.target for r in upstream.unexpected_requests()] == [
        upstream.prefix + "/predict",
        upstream.metrics_path + "?x=1",
    ]
    assert all(r.verified is not None for r in upstream.requests)  # signed fine, wrong place


def test_get_without_content_length_zero_is_411(creds, upstream):
    response = _get(creds, upstream.metrics_url, content_length=False)
    assert response.status_code == 411
    assert upstream.requests[-1].error == "GET without Content-Length: 0"


def test_fault_status_and_delay(creds, upstream):
    upstream.set_faults(mode=FaultMode.STATUS, status=503)
    assert _get(creds, upstream.metrics_url).status_code == 503
    upstream.set_faults(mode=FaultMode.NONE, delay_seconds=0.4)
    started = time.monotonic()
    assert _get(creds, upstream.metrics_url).status_code == 200
    assert time.monotonic() - started >= 0.4
    with pytest.raises(httpx.ReadTimeout):
        _get(creds, upstream.metrics_url, timeout=0.1)
    upstream.reset_faults()
    assert _get(creds, upstream.metrics_url).status_code == 200


def test_fault_reset_mid_body_and_garbage(creds, upstream):
    upstream.set_faults(mode=FaultMode.RESET_MID_BODY)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        _get(creds, upstream.metrics_url)
    upstream.set_faults(mode=FaultMode.GARBAGE)
    with pytest.raises(httpx.RemoteProtocolError):
        _get(creds, upstream.metrics_url)
    assert [r.fault for r in upstream.requests] == [FaultMode.RESET_MID_BODY, FaultMode.GARBAGE]
    assert GARBAGE[:1] == b"\x16"  # looks like a TLS record, not HTTP


def test_fault_oversized_body(creds, upstream):
    upstream.set_faults(mode=FaultMode.OVERSIZED, oversized_bytes=3_000_000)
    response = _get(creds, upstream.metrics_url)
    assert response.headers["content-length"] == "3000000"
    assert len(response.content) == 3_000_000
    upstream.set_faults(oversized_declares_length=False)
    response = _get(creds, upstream.metrics_url)
    assert "content-length" not in response.headers
    assert len(response.content) == 3_000_000
    # A client that gives up early does not upset the server.
    upstream.set_faults(oversized_bytes=50_000_000)
    headers = sign_with_sdk(
        creds.signer, "GET", upstream.metrics_url, headers={"content-length": "0"}
    )
    with creds.client.stream("GET", upstream.metrics_url, headers=headers) as stream:
        next(stream.iter_bytes())
    upstream.reset_faults()
    assert _get(creds, upstream.metrics_url).status_code == 200


def test_refuse_after_count(creds, upstream):
    upstream.set_faults(refuse_after=2)
    close = {"Connection": "close"}  # a new connection per request, so the third must connect
    assert _get(creds, upstream.metrics_url, extra=close).status_code == 200
    assert _get(creds, upstream.metrics_url, extra=close).status_code == 200
    assert not upstream.listening
    with pytest.raises(httpx.ConnectError):
        _get(creds, upstream.metrics_url, extra=close)


def test_many_concurrent_connections(creds, upstream):
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    with httpx.Client(limits=limits) as client:

        def scrape(_):
            return _get(creds, upstream.metrics_url, client=client).status_code

        with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
            statuses = list(pool.map(scrape, range(128)))
    assert statuses == [200] * 128
    assert len(upstream.requests) == 128
