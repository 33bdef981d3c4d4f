"""Discovery inside the proxy app: the live target set over the Data Science stand-in and signed
deployment stand-ins, all over loopback with the real SDK signer (no respx, no fakes)."""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager

import httpx
import pytest

from app.credentials import build_credentials
from app.server import create_app
from app.settings import load_settings
from testkit.datascience_api import DataScienceApi
from tests.support.signed_upstream import SignedUpstream

LOCAL = "http://127.0.0.1:9/metrics"  # explicit target, never scraped here


@pytest.fixture
def upstreams(registry):
    with SignedUpstream(registry) as chat, SignedUpstream(registry) as custom:
        with SignedUpstream(registry) as late:
            yield chat, custom, late


def _add(api: DataScienceApi, upstream: SignedUpstream, name: str, compartment: str, **fields):
    return api.add(
        name, compartment_id=compartment, url=upstream.url, id=upstream.prefix[1:], **fields
    )


@asynccontextmanager
async def proxy(env):
    settings = load_settings(env)
    app = create_app(settings, build_credentials(settings.proxy.auth))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as client:
            yield client


async def _until(check, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met before the deadline (last: {result!r})")
        await asyncio.sleep(0.05)


def _env(api_key, datascience, compartment, **extra):
    return {
        "OCI_CONFIG_FILE": str(api_key.config_path),
        "OCI_COMPARTMENT_ID": compartment,
        "OCI_DATA_SCIENCE_ENDPOINT": datascience.endpoint,
        "DISCOVERY_INTERVAL": "1s",
        "PROXY_PORT": "18080",
        **extra,
    }


def _names(sd):
    return sorted(group["labels"]["deployment"] for group in sd.json())


def test_scope_all_adds_non_aqua_deployments_and_the_set_follows_the_api(
    api_key, datascience, compartment, upstreams
):
    chat_up, custom_up, late_up = upstreams
    chat = _add(datascience, chat_up, "Chat prod", compartment, aqua_model="Llama-3.1-8B")
    _add(datascience, custom_up, "Custom", compartment, aqua=False)
    env = _env(api_key, datascience, compartment, DISCOVERY_SCOPE="all", TARGETS=f"mine={LOCAL}")

    async def go():
        async with proxy(env) as client:

            async def listed():
                ready = await client.get("/readyz")
                return ready if ready.status_code == 200 else None

            await _until(listed)
            sd = await client.get("/sd")
            scraped = await client.get("/targets/chat-prod/metrics")
            _add(datascience, late_up, "Late", compartment)
            datascience.delete(chat.id)

            async def changed():
                now = await client.get("/sd")
                return now if "late" in _names(now) and "chat-prod" not in _names(now) else None

            after = await _until(changed)
            gone = await client.get("/targets/chat-prod/metrics")
            late = await client.get("/targets/late/metrics")
            inventory = (await client.get("/metrics")).text
            return sd, scraped, after, gone, late, inventory

    sd, scraped, after, gone, late, inventory = asyncio.run(go())
    assert _names(sd) == ["chat-prod", "custom", "mine"]
    chat_labels = next(g["labels"] for g in sd.json() if g["labels"]["deployment"] == "chat-prod")
    assert chat_labels["display_name"] == "Chat prod"
    assert chat_labels["aqua_model"] == "Llama-3.1-8B"
    assert chat_labels["deployment_ocid"] == chat.id
    assert chat_labels["inference_container"] == "vllm"
    assert scraped.status_code == 200 and b"vllm:num_requests_running" in scraped.content
    assert [r.verified is not None for r in chat_up.requests] == [True]  # signed, and verified
    assert _names(after) == ["custom", "late", "mine"]
    assert gone.status_code == 404
    assert late.status_code == 200 and late_up.requests[-1].verified is not None
    assert 'aqua_deployment_info{aqua_model="Late"' in inventory
    assert 'aqua_discovery_list_calls_total{result="ok"}' in inventory
    # The departed deployment's proxy series went with it; the remaining one's are there.
    assert 'deployment="chat-prod"' not in inventory
    assert 'aqua_proxy_upstream_responses_total{code="200",deployment="late"} 1.0' in inventory


def test_aqua_scope_leaves_other_deployments_out(api_key, datascience, compartment, upstreams):
    chat_up, custom_up, _ = upstreams
    _add(datascience, chat_up, "Chat", compartment)
    _add(datascience, custom_up, "Custom", compartment, aqua=False)
    # A URL that fails TARGET's rules (plain http off loopback; a documentation address) is
    # never given a name the route would fetch.
    datascience.add("Plain", compartment_id=compartment, url="http://198.51.100.7/md")

    async def go():
        async with proxy(_env(api_key, datascience, compartment)) as client:

            async def listed():
                ready = await client.get("/readyz")
                return ready if ready.status_code == 200 else None

            await _until(listed)
            return (
                await client.get("/sd"),
                await client.get("/targets/custom/metrics"),
                await client.get("/targets/plain/metrics"),
            )

    sd, custom, plain = asyncio.run(go())
    assert _names(sd) == ["chat"]
    assert custom.status_code == 404 and custom_up.requests == []
    assert plain.status_code == 404


def test_not_ready_until_a_listing_works(api_key, datascience, compartment, caplog):
    caplog.set_level("WARNING", logger="app.discovery")
    datascience.deny_compartment(compartment)

    async def go():
        async with proxy(_env(api_key, datascience, compartment)) as client:

            async def failed():
                ready = await client.get("/readyz")
                return ready if "not_authorized" in ready.text else None

            first = await _until(failed)
            datascience.deny_compartment(compartment, denied=False)

            async def listed():
                ready = await client.get("/readyz")
                return ready if ready.status_code == 200 else None

            return first, await _until(listed), await client.get("/sd")

    first, ready, sd = asyncio.run(go())
    assert first.status_code == 503
    assert first.text.startswith("not ready: the first fleet listing has not succeeded")
    assert ready.text == "ready\n" and sd.json() == []
    # A missing policy is logged once, with the statement to add (the README quotes this line).
    [line] = [r for r in caplog.records if r.name == "app.discovery.poller.discovery"]
    assert line.getMessage() == (
        "discovery: failing (not_authorized: HTTP 404 NotAuthorizedOrNotFound); no result yet, "
        "retrying with backoff; listing needs an IAM policy such as 'allow dynamic-group <group> "
        "to read data-science-model-deployments in compartment <compartment>' (or 'any-user ... "
        "where request.principal.id = ...'); check OCI_COMPARTMENT_ID too"
    )
