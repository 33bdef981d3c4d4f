"""OCI Monitoring benchmark: API calls per minute for 1, 50 and 500 deployments.

    .venv/bin/python bench/oci_monitoring_bench.py            5 rounds per fleet size
    .venv/bin/python bench/oci_monitoring_bench.py --quick    3 rounds per fleet size

The real collector (`app.monitoring.collector.MonitoringCollector`, the real SDK client, an API key
signer, the real pacer at 8 calls/s) against the signature-checking Monitoring stand-in on
127.0.0.1 (in this process), with every deployment running 2 instances and publishing the nine
metrics of a GPU shape (18 streams each). One round is one OCI_MONITORING_INTERVAL (60 s by
default), so calls per round are calls per minute. Reported per fleet size:

* `summarize_calls_per_minute`: SummarizeMetricsData calls in a steady round (one per metric per
  compartment: must not grow with deployments);
* `list_pages_per_refresh` and `list_calls_per_minute`: ListMetrics pages when the catalogue is
  refreshed (every 10 rounds), and that amortized per minute;
* `per_deployment_calls_per_minute`: what one call per metric per deployment would cost, the
  design this replaces (computed: metrics x deployments), and the ratio of the two;
* `round_median_s` (steady rounds, pacing included) and its ratio to the 1-deployment round
  measured in the same run; `series_exposed`.

Prints JSON. `run(quick)` returns the same dict.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.monitoring.collector import CATALOGUE_EVERY, MonitoringCollector
from app.monitoring.scope import Watched, build_scope
from bench.common import api_key_setup, quick_json_main
from testkit.cavage import KeyRegistry
from testkit.monitoring_api import GPU_DEPLOYMENT_METRICS, MonitoringApi
from testkit.oci_credentials import fake_ocid

FLEET_SIZES = (1, 50, 500)
INSTANCES = 2


def measure(signer: Any, registry: KeyRegistry, deployments: int, rounds: int) -> dict[str, Any]:
    compartment = fake_ocid("compartment")
    with MonitoringApi(registry) as api:
        watched = [
            Watched(f"md-{i:03d}", api.add(compartment_id=compartment, instances=INSTANCES).ocid)
            for i in range(deployments)
        ]
        scope = build_scope(watched, (compartment,), single_endpoint=True)
        collector = MonitoringCollector(lambda: scope, lambda: signer, endpoint=api.endpoint)
        collector()  # first round: ListMetrics catalogue, connections, imports
        list_pages = len([c for c in api.calls if c.operation == "listMetrics"])
        api.clear_calls()
        times = []
        snapshot = None
        for _ in range(rounds):
            started = time.perf_counter()
            snapshot = collector()
            times.append(time.perf_counter() - started)
        calls = api.calls
    summarize = len([c for c in calls if c.operation == "summarizeMetricsData"]) / rounds
    steady_list = len([c for c in calls if c.operation == "listMetrics"]) / rounds
    metrics = len(GPU_DEPLOYMENT_METRICS)
    list_per_minute = list_pages / CATALOGUE_EVERY
    return {
        "deployments": deployments,
        "summarize_calls_per_minute": summarize,
        "list_pages_per_refresh": list_pages,
        "list_calls_in_steady_rounds": steady_list,
        "list_calls_per_minute": list_per_minute,
        "calls_per_minute": summarize + list_per_minute,
        "per_deployment_calls_per_minute": metrics * deployments,
        "per_deployment_over_ours": metrics * deployments / (summarize + list_per_minute),
        "round_median_s": statistics.median(times),
        "round_times_s": times,
        "series_exposed": len(snapshot.samples) if snapshot else 0,
        "all_calls_verified": all(c.verified is not None for c in calls),
    }


def run(quick: bool = False) -> dict[str, Any]:
    rounds = 3 if quick else 5
    _, registry, signer = api_key_setup("aqbench-ocimon-")
    results = [measure(signer, registry, size, rounds) for size in FLEET_SIZES]
    baseline = results[0]["round_median_s"]
    for result in results:
        result["round_over_one_deployment"] = result["round_median_s"] / baseline
    return {"metrics_published": len(GPU_DEPLOYMENT_METRICS), "rounds": rounds, "fleets": results}


def main(argv: list[str] | None = None) -> int:
    return quick_json_main(__doc__.splitlines()[0], "fewer rounds", run, argv)


if __name__ == "__main__":
    sys.exit(main())
