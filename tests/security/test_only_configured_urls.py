"""The proxy can never be made to contact anything but its configured URLs.

A proxy process on a real socket serves two configured deployments (`md`, `other`), both recording
stand-ins. A decoy server on another loopback port plays every other internal service. Hypothesis
generates requests, sent byte for byte over a raw socket: paths (encodings, `..`, `%2F`, `//`,
unicode, raw bytes, very long), absolute-URI and authority-form request targets, methods, and
routing headers (Host, X-Forwarded-*, Forwarded, X-Original-URL, X-Rewrite-URL, ...) that point at
the decoy. After every request: the decoy saw nothing; the deployments saw only `GET <their metrics
path>`, with their own Host, our signature and the scrape headers; the proxy never answered 500.

CI runs 1,000 generated requests; AQUA_FULL_SOAK=1 runs 10,000.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.proxy_process import ProxyProcess, label_values
from tests.support.raw_http import build_request, exchange
from tests.support.recording_server import RecordingServer
from tests.support.signed_upstream import SignedUpstream

FULL = os.environ.get("AQUA_FULL_SOAK") == "1"
EXAMPLES = 10_000 if FULL else 1000
# What the proxy may send a deployment, and nothing else (the signature covers date and host).
UPSTREAM_HEADERS = {
    "host",
    "accept",
    "accept-encoding",
    "content-length",
    "user-agent",
    "date",
    "authorization",
    "connection",
}
# Placeholders, replaced per run with the real authorities (ports are picked at run time).
DECOY, MD, PROXY = "{decoy}", "{md}", "{proxy}"

ATOMS = [
    "targets", "md", "other", "metrics", "sd", "healthz", "readyz", "predict", "docs", "openapi.json",
    "..", ".", "", "%2e%2e", "%2E%2E", "%2F", "%2f", "%252F", "..%2F", "%2F..", "%2e%2e%2f",
    "md%2F..%2Fother", "md%2Fmetrics", "%5C", "\\", "..\\", ";", ";x=y", "%00", "%0d%0aHost:%20x",
    DECOY, f"http:%2F%2F{DECOY}", "http:", f"@{DECOY}", f"{DECOY}@", "~", "%7E", "*", "?", "#",
    "md?", "md#x", "%3F", "%23", "\uff4d\uff44", "ⓜⓓ", "md\u0000", "мд", "\U0001d426\U0001d41d",
]  # fmt: skip
QUERIES = [
    "",
    f"?url=http://{DECOY}/metrics",
    f"?target=http://{DECOY}/",
    "?__metrics_path__=/x",
    "?name=other",
    f"?next=//{DECOY}",
    "?%2e%2e=1",
]
ABSOLUTE_TARGETS = [
    f"http://{DECOY}/targets/md/metrics",
    f"http://{DECOY}/metrics",
    f"http://{MD}/targets/md/metrics",
    f"http://{MD}/metrics",
    f"https://{DECOY}/",
    f"http://{PROXY}/targets/md/metrics",
    f"http://{DECOY}",
    f"//{DECOY}/metrics",
    f"//{DECOY}/targets/md/metrics",
    DECOY,  # authority-form (CONNECT)
    "*",  # asterisk-form (OPTIONS)
    f"http://user:pw@{DECOY}/targets/md/metrics",
]
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT"]
METHODS += ["PROPFIND", "get", "Get", "M-SEARCH", "PURGE", "X" * 50]
HEADER_NAMES = [
    "Host", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-For", "X-Forwarded-Port",
    "X-Forwarded-Prefix", "X-Forwarded-Server", "Forwarded", "X-Original-URL", "X-Rewrite-URL",
    "X-Original-Host", "X-Host", "X-HTTP-Method-Override", "X-Real-IP", "Referer", "Origin",
    "X-Prometheus-Scrape-Timeout-Seconds", "Accept", "Accept-Encoding", "Authorization", "Cookie",
    "Proxy-Authorization", "Via", "X-Target", "X-Upstream", "Destination", "Upgrade", "Expect",
]  # fmt: skip
HEADER_VALUES = [
    DECOY, f"http://{DECOY}/", f"http://{DECOY}/metrics", "/targets/other/metrics",
    f"for=1.2.3.4;host={DECOY};proto=http", f"for=x, for=y;host={DECOY}", "evil.invalid",
    "localhost", MD, "GET", "0", "-1", "nan", "inf", "1e309", "0.0001", "gzip", "*", "h2c",
    "100-continue", f"//{DECOY}", "Basic Zm9vOmJhcg==", 'Signature keyId="x",signature="y"',
]  # fmt: skip

_visible = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
_atom = st.sampled_from(ATOMS)
segment = st.one_of(
    _atom,
    _atom,
    _atom,
    st.text(st.characters(codec="utf-8", exclude_characters="\r\n /"), max_size=10),
    st.binary(max_size=6).map(lambda raw: raw.replace(b"\r", b"").replace(b"\n", b"")),
)
_bytes = st.one_of(segment, st.just(b"")).map(lambda p: p if isinstance(p, bytes) else p.encode())


@st.composite
def near_route(draw) -> bytes:
    """Close to a real route, so the proxy's routing and forwarding code runs on odd input."""
    name = draw(st.one_of(st.sampled_from([b"md", b"other"]), _bytes))
    before = draw(st.lists(_bytes, max_size=2))
    after = draw(st.lists(_bytes, max_size=2))
    path = b"/".join([b"", *before, b"targets", name, b"metrics", *after])
    return path + draw(st.sampled_from(QUERIES)).encode()


@st.composite
def origin_form(draw) -> bytes:
    parts = draw(st.lists(segment, max_size=8))
    encoded = [p if isinstance(p, bytes) else p.encode("utf-8") for p in parts]
    path = b"/" * draw(st.integers(1, 3)) + b"/".join(encoded)
    return path + draw(st.sampled_from(QUERIES)).encode()


@st.composite
def long_path(draw) -> bytes:
    size = draw(st.integers(1_000, 70_000))
    filler = draw(st.sampled_from([b"a", b"%2F", b"../", "é".encode()]))
    where = draw(st.sampled_from(["name", "tail"]))
    if where == "name":
        return b"/targets/" + filler * (size // len(filler)) + b"/metrics"
    return b"/targets/md/metrics/" + filler * (size // len(filler))


# A real scrape route: the headers and method are then what is being attacked.
real_route = st.tuples(st.sampled_from(["md", "other"]), st.sampled_from(QUERIES)).map(
    lambda pair: f"/targets/{pair[0]}/metrics{pair[1]}".encode()
)
request_target = st.one_of(
    real_route,
    near_route(),
    origin_form(),
    st.sampled_from(ABSOLUTE_TARGETS).map(str.encode),
    st.tuples(st.sampled_from(ABSOLUTE_TARGETS), st.sampled_from(QUERIES)).map(
        lambda pair: (pair[0] + pair[1]).encode()
    ),
    long_path(),
)
header_value = st.one_of(st.sampled_from(HEADER_VALUES), st.text(_visible, max_size=40))
headers = st.lists(st.tuples(st.sampled_from(HEADER_NAMES), header_value), max_size=6)
method = st.one_of(
    st.just("GET"),
    st.just("GET"),
    st.sampled_from(METHODS),
    st.text(_visible, min_size=1, max_size=12),
)


@pytest.fixture(scope="module")
def lab(registry, api_key, tmp_path_factory):
    with (
        SignedUpstream(registry) as md,
        SignedUpstream(registry) as other,
        RecordingServer() as decoy,
    ):
        env = {
            "TARGETS": f"md={md.url},other={other.url}",
            "OCI_CONFIG_FILE": str(api_key.config_path),
            "UPSTREAM_TIMEOUT_SECONDS": "3",
        }
        with ProxyProcess(env, work_dir=tmp_path_factory.mktemp("proxy")) as proxy:
            yield proxy, {"md": md, "other": other}, decoy
            logs = proxy.logs()
        assert "Traceback" not in logs, logs


def _fill(template: bytes, proxy: ProxyProcess, md: SignedUpstream, decoy: RecordingServer):
    return (
        template.replace(DECOY.encode(), decoy.authority.encode())
        .replace(MD.encode(), md.authority.encode())
        .replace(PROXY.encode(), f"127.0.0.1:{proxy.port}".encode())
    )


def _check_upstreams(upstreams, decoy, api_key):
    assert decoy.requests == [], f"the decoy was contacted: {decoy.requests}"
    for name, upstream in upstreams.items():
        assert upstream.unexpected_requests() == [], (name, upstream.unexpected_requests())
        for request in upstream.requests:
            assert request.header("host") == upstream.authority, request.headers
            assert request.key_id == api_key.key_id, request.authorization
            assert request.header_names() <= UPSTREAM_HEADERS, request.headers
            assert request.body == b""
        upstream.clear()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    method=method,
    target=request_target,
    extra_headers=headers,
    keep_host=st.integers(0, 4).map(lambda n: n != 4),  # mostly with a Host header
)
@example("GET", f"http://{DECOY}/metrics".encode(), [], True)
@example("GET", f"//{DECOY}/metrics".encode(), [], True)
@example("CONNECT", DECOY.encode(), [], True)
@example("GET", b"/targets/md/metrics", [("Host", DECOY)], False)
@example("GET", b"/targets/md/metrics", [("X-Forwarded-Host", DECOY), ("Forwarded", DECOY)], True)
@example("GET", b"/", [("X-Original-URL", f"http://{DECOY}/metrics")], True)
@example("GET", b"/", [("X-Rewrite-URL", "/targets/md/metrics")], True)
@example("GET", b"/targets/md%2F..%2F..%2F/metrics", [], True)
@example("GET", b"/targets/..%2F..%2F" + DECOY.encode() + b"/metrics", [], True)
@example("GET", b"/targets/md/../../" + DECOY.encode() + b"/metrics", [], True)
@example("GET", b"/targets/md/metrics?url=http://" + DECOY.encode() + b"/", [], True)
@example("GET", "/targets/\uff4d\uff44/metrics".encode(), [], True)
@example("GET", b"/targets/" + b"a" * 70_000 + b"/metrics", [], True)
def test_no_request_reaches_anything_but_the_configured_urls(
    lab, api_key, method, target, extra_headers, keep_host
):
    proxy, upstreams, decoy = lab
    md = upstreams["md"]
    generated_host = any(name.lower() == "host" for name, _ in extra_headers)
    head = [("Host", "proxy")] if keep_host and not generated_host else []
    filled_headers = [
        (name, _fill(value.encode("utf-8"), proxy, md, decoy)) for name, value in extra_headers
    ]
    raw = build_request(
        _fill(method.encode(), proxy, md, decoy),
        _fill(target, proxy, md, decoy),
        [*head, *filled_headers, ("Connection", "close")],
    )
    response = exchange(
        "127.0.0.1", proxy.port, raw, timeout=5, head=method.upper() in {"HEAD", "CONNECT"}
    )
    assert response.status is not None, f"no HTTP answer to {raw[:300]!r}: {response.raw[:200]!r}"
    assert response.status != 500, response.raw[:500]
    _check_upstreams(upstreams, decoy, api_key)


def test_after_the_generated_requests_the_proxy_is_healthy_and_only_knows_its_targets(lab):
    proxy, upstreams, decoy = lab
    status, _ = proxy.get("/healthz")
    assert status == 200
    deployments = {
        value
        for value in label_values(proxy.metrics())
        if value in {"md", "other"} or not value.replace(".", "").isdigit()
    }
    # Metric labels only ever name configured deployments (or fixed kinds, codes and modes).
    assert "md" in deployments
    assert decoy.authority not in " ".join(deployments)
    status, body = proxy.get("/targets/md/metrics")
    assert status == 200 and b"vllm:" in body
    assert upstreams["md"].unexpected_requests() == []
    assert decoy.requests == []
