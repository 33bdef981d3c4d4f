"""Credentials change under a running proxy while it is under load: scrapes keep succeeding.

A load loop (several concurrent scrapers) runs against the proxy process while the credentials on
disk change underneath it, with tokens short-lived enough that a proxy still signing with an old
one would be refused by the gateway stand-in (which checks every token's expiry and signature).

The load runs LOAD_SECONDS (5 s) per scenario in CI; set AQUA_FULL_SOAK=1 for 60 s.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

import httpx
import pytest

from testkit.cavage import KeyRegistry
from testkit.oci_credentials import (
    TokenIssuer,
    make_resource_principal_v22,
    make_security_token_profile,
)
from tests.support.proxy_process import ProxyProcess, sample_value
from tests.support.signed_upstream import SignedUpstream

FULL = os.environ.get("AQUA_FULL_SOAK") == "1"
LOAD_SECONDS = 60.0 if FULL else 5.0
WORKERS = 4
TOKEN_TTL = 4  # seconds: a token held one rotation too long is refused
ROTATE_EVERY = 1.0


@pytest.fixture
def issuer_registry():
    registry = KeyRegistry()
    issuer = TokenIssuer()
    issuer.register_with(registry)
    return issuer, registry


def run_load(proxy: ProxyProcess, rotate, *, seconds: float = LOAD_SECONDS):
    """Scrape `md` with WORKERS concurrent loops for `seconds`, calling `rotate()` every
    ROTATE_EVERY seconds from a thread. Returns [(status, body)] and the number of rotations."""
    stop = threading.Event()
    rotations = []

    def rotator():
        while not stop.wait(ROTATE_EVERY):
            rotate()
            rotations.append(time.monotonic())

    async def worker(client: httpx.AsyncClient, deadline: float, results: list):
        while time.monotonic() < deadline:
            response = await client.get(
                "/targets/md/metrics", headers={"x-prometheus-scrape-timeout-seconds": "10"}
            )
            results.append((response.status_code, response.text))

    async def go():
        results: list = []
        deadline = time.monotonic() + seconds
        async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as client:
            await asyncio.gather(*(worker(client, deadline, results) for _ in range(WORKERS)))
        return results

    thread = threading.Thread(target=rotator, daemon=True)
    thread.start()
    try:
        results = asyncio.run(go())
    finally:
        stop.set()
        thread.join(timeout=10)
    return results, len(rotations)


def _assert_all_succeeded(results, rotations, upstream, proxy):
    assert rotations >= int(LOAD_SECONDS / ROTATE_EVERY) - 1, rotations
    assert len(results) >= 20 * LOAD_SECONDS, f"only {len(results)} scrapes: not a load"
    failed = [(status, text) for status, text in results if status != 200]
    assert not failed, f"{len(failed)}/{len(results)} scrapes failed, first: {failed[:3]}"
    assert "Traceback" not in proxy.logs(), proxy.logs()
    # The token in use really changed, many times, during the load.
    key_ids = {r.key_id for r in upstream.requests if r.verified}
    assert len(key_ids) >= rotations // 2, (len(key_ids), rotations)


def test_session_token_replaced_on_disk_under_load(tmp_path, issuer_registry):
    """`oci session refresh`: same key, a new token written over the old one."""
    issuer, registry = issuer_registry
    creds = make_security_token_profile(tmp_path, issuer, ttl_seconds=TOKEN_TTL)
    with SignedUpstream(registry) as upstream:
        env = {
            "TARGETS": f"md={upstream.url}",
            "OCI_CONFIG_FILE": str(creds.config_path),
            "OCI_CONFIG_PROFILE": creds.profile,
            "TOKEN_REFRESH_CHECK_SECONDS": "0.3",
        }
        with ProxyProcess(env, work_dir=tmp_path / "proxy") as proxy:
            results, rotations = run_load(proxy, lambda: creds.rotate(ttl_seconds=TOKEN_TTL))
            _assert_all_succeeded(results, rotations, upstream, proxy)
            # Picked up by the background check, before the old token expired: the gateway
            # never had to refuse anything.
            refused = [r for r in upstream.requests if not r.verified]
            assert not refused, [r.error for r in refused[:3]]
            assert (
                sample_value(
                    proxy.metrics(), "aqua_proxy_signer_refreshes_total", {"mode": "security_token"}
                )
                >= rotations // 2
            )


def test_session_reauthenticated_with_a_new_key_under_load(tmp_path, issuer_registry):
    """`oci session authenticate` again: a new key pair AND a new token replace the old ones
    (same paths). Signing the new token with the old key is refused by OCI."""
    issuer, registry = issuer_registry
    creds = make_security_token_profile(tmp_path, issuer, ttl_seconds=3600)
    with SignedUpstream(registry) as upstream:
        env = {
            "TARGETS": f"md={upstream.url}",
            "OCI_CONFIG_FILE": str(creds.config_path),
            "OCI_CONFIG_PROFILE": creds.profile,
            "TOKEN_REFRESH_CHECK_SECONDS": "0.3",
        }
        with ProxyProcess(env, work_dir=tmp_path / "proxy") as proxy:
            results, rotations = run_load(
                proxy, lambda: creds.rotate(ttl_seconds=3600, new_key=True)
            )
            _assert_all_succeeded(results, rotations, upstream, proxy)


def test_resource_principal_token_expiring_under_load(tmp_path, issuer_registry):
    """RP v2.2 in file mode: the platform rewrites the RPST file before the token expires."""
    issuer, registry = issuer_registry
    creds = make_resource_principal_v22(tmp_path, issuer, mode="file", ttl_seconds=TOKEN_TTL)
    with SignedUpstream(registry) as upstream:
        env = {
            "TARGETS": f"md={upstream.url}",
            "TOKEN_REFRESH_CHECK_SECONDS": "0.3",
            **creds.env,
        }
        with ProxyProcess(env, work_dir=tmp_path / "proxy") as proxy:
            results, rotations = run_load(proxy, lambda: creds.rotate(ttl_seconds=TOKEN_TTL))
            _assert_all_succeeded(results, rotations, upstream, proxy)
            expired = [r for r in upstream.requests if r.error == "token expired"]
            assert not expired, f"{len(expired)} requests signed with an expired token"
