"""Discovery as the proxy runs it: a live fleet kept current from the stand-in over loopback."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from app.discovery.fleet import DiscoveryScope
from app.discovery.listing import ListingError
from app.discovery.service import DiscoveryService, discover_once, fleet_table
from app.targets import parse_targets


async def _until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.01)


def _explicit(text):
    return list(parse_targets(None, text))


def test_the_fleet_follows_additions_deletions_and_outages(datascience, make_lister, compartment):
    chat = datascience.add("Chat", compartment_id=compartment)
    datascience.add("Custom", compartment_id=compartment, aqua=False)
    explicit = _explicit("local=http://127.0.0.1:8000")
    changes = []
    service = DiscoveryService(
        make_lister(),
        explicit=explicit,
        interval=0.05,
        on_change=changes.append,
        jitter=0.0,
        initial_backoff=0.02,
        max_backoff=0.05,
    )

    def names():
        return [t.name for t in service.fleet.targets]

    async def go():
        assert names() == ["local"]  # explicit targets serve before the first listing
        service.start()
        await _until(lambda: names() == ["local", "chat"])
        added = datascience.add("Summarizer", compartment_id=compartment)
        await _until(lambda: "summarizer" in names())
        datascience.fail(500)  # an outage: keep scraping the last known fleet
        failures = service.status().calls["server_error"]
        await _until(lambda: service.status().calls["server_error"] >= failures + 3)
        datascience.delete(chat.id)
        datascience.clear_fault()
        await _until(lambda: "chat" not in names())
        assert names() == ["local", "summarizer"]
        await service.stop()
        return added

    added = asyncio.run(go())
    assert [t.name for t in changes[0].targets] == ["local", "chat"]
    assert service.fleet.target("summarizer").url == f"{added.model_deployment_url}/predict/metrics"
    assert service.fleet.out_of_scope[0].display_name == "Custom"


def test_outage_keeps_the_fleet_while_failing(datascience, make_lister, compartment):
    datascience.add("Chat", compartment_id=compartment)
    service = DiscoveryService(make_lister(), interval=60)

    async def go():
        await service.poller.poll_once()
        before = service.fleet
        datascience.fail(429)
        await service.poller.poll_once()
        await service.poller.poll_once()
        return before

    before = asyncio.run(go())
    assert service.fleet is before
    assert [t.name for t in service.fleet.targets] == ["chat"]
    assert service.status().failing


def test_a_refused_url_is_logged_once(datascience, make_lister, compartment, caplog):
    datascience.add("Remote", compartment_id=compartment, url="http://example.com/md")
    service = DiscoveryService(make_lister(), interval=60)

    async def go():
        for _ in range(3):
            await service.poller.poll_once()

    with caplog.at_level(logging.WARNING, logger="app.discovery.service"):
        asyncio.run(go())
    refused = [r.getMessage() for r in caplog.records if "not scraping" in r.getMessage()]
    assert len(refused) == 1
    assert "remote" in refused[0] and "plain http" in refused[0]
    assert service.fleet.targets == ()
    # Never fetched: the stand-in saw only listing calls.
    assert all(c.target.startswith("/20190101/modelDeployments") for c in datascience.calls)


def test_collector_reports_the_live_fleet(datascience, make_lister, compartment):
    datascience.add("Chat", compartment_id=compartment)
    datascience.add("Broken", compartment_id=compartment, lifecycle_state="FAILED")
    service = DiscoveryService(make_lister(), interval=60)
    registry = CollectorRegistry()
    registry.register(service.collector())
    asyncio.run(service.poller.poll_once())
    text = generate_latest(registry).decode()
    assert 'deployment="chat"' in text and 'lifecycle_state="FAILED"' in text
    assert 'aqua_discovery_list_calls_total{result="ok"} 1.0' in text
    assert 'aqua_discovery_list_calls_total{result="throttled"} 0.0' in text


def test_discover_once_and_its_table(datascience, make_lister, compartment):
    datascience.add("Chat", compartment_id=compartment, aqua_model="Llama-3.1-8B")
    datascience.add("Broken", compartment_id=compartment, lifecycle_state="FAILED")
    datascience.add("Custom", compartment_id=compartment, aqua=False)
    fleet = discover_once(make_lister(), scope=DiscoveryScope.AQUA)
    lines = fleet_table(fleet).splitlines()

    assert lines[0].split()[:6] == ["NAME", "STATE", "MODEL", "CONTAINER", "SHAPE", "SCRAPED"]
    rows = {line.split()[0]: line for line in lines[1:] if not line.startswith("-")}
    assert "ACTIVE" in rows["chat"] and "Llama-3.1-8B" in rows["chat"] and " yes " in rows["chat"]
    assert "no: not ACTIVE (FAILED)" in rows["broken"]
    assert any("not an AQUA deployment ('Custom'" in line for line in lines)

    datascience.fail(404)
    with pytest.raises(ListingError) as info:
        discover_once(make_lister())
    assert info.value.kind == "not_authorized"
