"""Discovery benchmark: one listing of 1,000 deployments (10 pages of 100) and what the fleet costs.

    .venv/bin/python bench/discovery_bench.py            5 timed listings
    .venv/bin/python bench/discovery_bench.py --quick    3 timed listings

Against the signature-checking Data Science stand-in on 127.0.0.1 (in this process, so its
serving time is inside the figures, as the real service's would be). Reported:

* `listing_median_s`: `DeploymentLister` (SDK pages + mapping to `DiscoveredDeployment`);
* `sdk_only_median_s`: the same pages through the bare SDK pagination helper, measured in the
  same run, and the ratio of the two (what our mapping and checks add);
* `build_fleet_median_s`: names, labels, URL checks and the merge for 1,000 deployments;
* memory held by 1,000 `DiscoveredDeployment`s and their `Fleet` (targets, entries, label sets):
  tracemalloc (exact Python allocations) and the process RSS delta (what the OS sees);
* what the proxy adds for the fleet's targets: the `TargetView` (/sd body, name index) built on
  every change (`target_view_median_s`, `target_view_kib`), and one upstream client per target
  (`clients_kib`, `clients_rss_mib`), as after every target has been scraped once.

Prints JSON. `run(quick)` returns the same dict, for `bench/run.py` to include.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import oci

from app.discovery.fleet import build_fleet
from app.discovery.listing import DeploymentLister, ListingConfig, build_client
from bench.common import api_key_setup, quick_json_main, rss_bytes
from testkit.datascience_api import DataScienceApi
from testkit.oci_credentials import fake_ocid

DEPLOYMENTS = 1000
REGION = "us-ashburn-1"


def _median_time(action: Any, runs: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


def run(quick: bool = False) -> dict[str, Any]:
    runs = 3 if quick else 5
    credentials, registry, signer = api_key_setup("aqbench-discovery-")
    compartment = fake_ocid("compartment")
    with DataScienceApi(registry, max_limit=100) as api:
        for i in range(DEPLOYMENTS):
            api.add(
                f"Deployment {i:04d} Llama 3.1 8B",
                compartment_id=compartment,
                aqua_model="Meta-Llama-3.1-8B-Instruct",
                url=f"https://modeldeployment.{REGION}.oci.customer-oci.com/{fake_ocid('datasciencemodeldeployment', 'iad')}",
                lifecycle_state="ACTIVE" if i % 10 else "FAILED",
            )
        config = ListingConfig((compartment,), REGION, endpoint=api.endpoint)
        lister = DeploymentLister(config, lambda: signer)
        client = build_client(signer, config)

        def sdk_only() -> list[Any]:
            return oci.pagination.list_call_get_all_results(
                client.list_model_deployments,
                compartment,
                limit=100,
                retry_strategy=oci.retry.NoneRetryStrategy(),
            ).data

        lister()  # warm: client, connections, imports
        sdk_only()
        api.clear_calls()
        listing_median, listing_times = _median_time(lister, runs)
        pages = len([c for c in api.calls if c.status == 200]) // runs
        sdk_median, sdk_times = _median_time(sdk_only, runs)

        listed = lister()
        fleet_median, _ = _median_time(lambda: build_fleet(listed), runs)
        listed = ()

        gc.collect()
        rss_before = rss_bytes(os.getpid())
        tracemalloc.start()
        base, _ = tracemalloc.get_traced_memory()
        held = lister()
        gc.collect()
        after_listing, _ = tracemalloc.get_traced_memory()
        fleet = build_fleet(held)
        gc.collect()
        after_fleet, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss_after = rss_bytes(os.getpid())
        scraped = len(fleet.targets)
        entries = len(fleet.entries)
        proxy = _proxy_cost(fleet, credentials.config_path, compartment, api.endpoint, runs)
        del fleet, held

    return {
        "deployments": DEPLOYMENTS,
        "pages_per_listing": pages,
        "runs": runs,
        "listing_median_s": listing_median,
        "listing_times_s": listing_times,
        "sdk_only_median_s": sdk_median,
        "sdk_only_times_s": sdk_times,
        "listing_over_sdk_only": listing_median / sdk_median,
        "build_fleet_median_s": fleet_median,
        "fleet_targets": scraped,
        "fleet_entries": entries,
        "deployments_kib": (after_listing - base) / 1024,
        "fleet_kib": (after_fleet - after_listing) / 1024,
        "held_kib_per_deployment": (after_fleet - base) / 1024 / DEPLOYMENTS,
        "tracemalloc_peak_mib": (peak - base) / 2**20,
        "rss_delta_mib": (rss_after - rss_before) / 2**20,
        **proxy,
    }


def _proxy_cost(
    fleet: Any, config_path: Path, compartment: str, endpoint: str, runs: int
) -> dict[str, float]:
    """The proxy's share for `fleet`: its target view, and a client for every target."""
    import asyncio

    from app.server import TargetView
    from app.settings import load_settings
    from app.upstreams import UpstreamClients

    settings = load_settings(
        {
            "OCI_COMPARTMENT_ID": compartment,
            "OCI_CONFIG_FILE": str(config_path),
            "OCI_DATA_SCIENCE_ENDPOINT": endpoint,
        }
    )
    view_median, _ = _median_time(lambda: TargetView.of(fleet.targets, settings), runs)
    gc.collect()
    rss_before = rss_bytes(os.getpid())
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    view = TargetView.of(fleet.targets, settings)
    gc.collect()
    after_view, _ = tracemalloc.get_traced_memory()
    clients = UpstreamClients(settings.proxy, auth=None)
    for target in fleet.targets:
        clients.client_for(target)
    gc.collect()
    after_clients, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = rss_bytes(os.getpid())
    asyncio.run(clients.aclose())
    del view
    return {
        "target_view_median_s": view_median,
        "target_view_kib": (after_view - base) / 1024,
        "clients_kib": (after_clients - after_view) / 1024,
        "clients_kib_per_target": (after_clients - after_view) / 1024 / len(fleet.targets),
        "proxy_rss_delta_mib": (rss_after - rss_before) / 2**20,
    }


def main(argv: list[str] | None = None) -> int:
    return quick_json_main(__doc__.splitlines()[0], "fewer timed runs", run, argv)


if __name__ == "__main__":
    sys.exit(main())
