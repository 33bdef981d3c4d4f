"""Headers across the proxy, in both directions, seen on the wire (raw sockets, no client library).

Inbound: a client's credentials, cookies and routing or identity headers never reach a deployment;
what arrives there is the proxy's own signed request and the scrape headers. Outbound: a
deployment's cookies, auth challenges and hop-by-hop headers (Connection and the headers it names,
Keep-Alive, Transfer-Encoding, Proxy-*, Upgrade, TE, Trailer) never reach the client, on success
and on error; the body is re-framed by the proxy with a Content-Length.
"""

from __future__ import annotations

import gzip
import secrets

import pytest

from tests.support.proxy_process import ProxyProcess
from tests.support.raw_http import build_request, exchange
from tests.support.recording_server import HOSTILE_HEADERS, HostileUpstream
from tests.support.signed_upstream import SignedUpstream, default_metrics_body

MARK = f"inbound-{secrets.token_hex(8)}"
INBOUND = [
    (
        "Authorization",
        f'Signature version="1",keyId="ST${MARK}",algorithm="rsa-sha256",signature="{MARK}"',
    ),
    ("Cookie", f"session={MARK}; other={MARK}"),
    ("Proxy-Authorization", f"Basic {MARK}"),
    ("X-Api-Key", MARK),
    ("opc-obo-token", MARK),  # OCI's on-behalf-of token header
    ("opc-request-id", MARK),
    ("X-Forwarded-For", "203.0.113.7"),
    ("X-Forwarded-Host", f"{MARK}.example"),
    ("Forwarded", f"for=203.0.113.7;host={MARK}.example"),
    ("X-Real-IP", "203.0.113.7"),
    ("Date", "Mon, 01 Jan 2001 00:00:00 GMT"),
    ("x-content-sha256", MARK),
    ("Content-Type", f"application/{MARK}"),
    ("Origin", f"http://{MARK}.example"),
    ("Referer", f"http://{MARK}.example/"),
    ("User-Agent", f"attacker/{MARK}"),
    ("X-Custom", MARK),
    ("Accept", "text/plain;version=0.0.4"),
    ("Accept-Encoding", "gzip"),
    ("X-Prometheus-Scrape-Timeout-Seconds", "10"),
]
# What a deployment may see from the proxy.
ALLOWED_UPSTREAM = {
    "host",
    "accept",
    "accept-encoding",
    "content-length",
    "user-agent",
    "date",
    "authorization",
    "connection",
}
# What a client may see from the proxy.
ALLOWED_DOWNSTREAM = {"content-type", "content-encoding", "content-length", "date", "connection"}
# The upstream's headers; `Connection` is checked by value (the proxy may send its own `close`).
FORBIDDEN_DOWNSTREAM = {name.lower() for name, _ in HOSTILE_HEADERS} - {"connection"} | {
    "transfer-encoding",
    "x-checksum",
}


STATUSES = (200, 401, 404, 500)


@pytest.fixture(scope="module")
def signed_proxy(registry, api_key, tmp_path_factory):
    with SignedUpstream(registry) as upstream:
        env = {"TARGETS": f"md={upstream.url}", "OCI_CONFIG_FILE": str(api_key.config_path)}
        with ProxyProcess(env, work_dir=tmp_path_factory.mktemp("proxy")) as proxy:
            yield proxy, upstream
        assert "Traceback" not in proxy.logs()


@pytest.fixture(scope="module")
def hostile_proxy(tmp_path_factory):
    upstreams = {status: HostileUpstream(status=status) for status in STATUSES}
    try:
        targets = ",".join(f"s{status}={up.metrics_url()}" for status, up in upstreams.items())
        env = {"TARGETS": targets, "OCI_AUTH": "none"}
        with ProxyProcess(env, work_dir=tmp_path_factory.mktemp("proxy")) as proxy:
            yield proxy, upstreams
        assert "Traceback" not in proxy.logs()
    finally:
        for upstream in upstreams.values():
            upstream.close()


@pytest.mark.parametrize("connection", ["close", "keep-alive"])
def test_inbound_credentials_and_cookies_never_travel_upstream(signed_proxy, api_key, connection):
    proxy, upstream = signed_proxy
    upstream.clear()
    request = build_request(
        "GET",
        "/targets/md/metrics?cookie=" + MARK,
        [("Host", "proxy"), *INBOUND, ("Connection", connection)],
    )
    response = exchange("127.0.0.1", proxy.port, request)
    assert response.status == 200, response.raw[:300]
    (seen,) = upstream.requests
    assert seen.verified, seen.error  # the proxy's own signature, valid
    assert seen.key_id == api_key.key_id
    assert seen.target == upstream.metrics_path  # the inbound query string stays behind
    assert seen.header_names() <= ALLOWED_UPSTREAM, seen.header_names() - ALLOWED_UPSTREAM
    for name, value in seen.headers:
        assert MARK not in value, f"{name}: {value}"
        assert "203.0.113.7" not in value, f"{name}: {value}"
    assert seen.header("host") == upstream.authority
    assert seen.header("date") != "Mon, 01 Jan 2001 00:00:00 GMT"
    assert seen.header("user-agent") == "aqua-metrics"
    # Scrape headers do travel: the deployment may compress for Prometheus.
    assert seen.header("accept-encoding") == "gzip"
    assert seen.header("accept") == "text/plain;version=0.0.4"


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("connection", ["close", "keep-alive"])
def test_upstream_cookies_and_hop_by_hop_headers_never_reach_the_client(
    hostile_proxy, status, connection
):
    proxy, upstreams = hostile_proxy
    upstream = upstreams[status]
    upstream.clear()
    request = build_request(
        "GET",
        f"/targets/s{status}/metrics",
        [("Host", "proxy"), ("Accept-Encoding", "identity"), ("Connection", connection)],
    )
    response = exchange("127.0.0.1", proxy.port, request)
    assert upstream.requests, "the deployment was not asked"
    assert response.status == (200 if status == 200 else 502), response.raw[:300]
    names = response.header_names()
    assert not names & FORBIDDEN_DOWNSTREAM, names & FORBIDDEN_DOWNSTREAM
    assert names <= ALLOWED_DOWNSTREAM, names - ALLOWED_DOWNSTREAM
    # Only the proxy's own framing: a length, and at most its own `Connection: close`.
    assert response.header("content-length") == str(len(response.body))
    assert response.all_values("connection") in ([], ["close"]), response.all_values("connection")
    assert b"s3cr3t-cookie" not in response.raw
    assert b"X-Checksum" not in response.raw and b"trailer-value" not in response.raw
    if status == 200:
        assert response.body == default_metrics_body()  # de-chunked, trailer dropped
    else:
        assert response.header("content-type") == "text/plain; charset=utf-8"


def test_a_gzip_body_is_relayed_with_headers_that_match_its_bytes(signed_proxy):
    """Content-Encoding is relayed only with the compressed bytes it describes."""
    proxy, _ = signed_proxy
    for encoding, compressed in (("gzip", True), ("identity", False)):
        request = build_request(
            "GET",
            "/targets/md/metrics",
            [("Host", "proxy"), ("Accept-Encoding", encoding), ("Connection", "close")],
        )
        response = exchange("127.0.0.1", proxy.port, request)
        assert response.status == 200
        assert response.header("content-length") == str(len(response.body))
        if compressed:
            assert response.header("content-encoding") == "gzip"
            assert gzip.decompress(response.body) == default_metrics_body()
        else:
            assert response.header("content-encoding") is None
            assert response.body == default_metrics_body()
