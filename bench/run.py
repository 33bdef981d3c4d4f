"""Run the aqua-metrics benchmarks; write raw JSON to bench/results/ and print a summary.

    .venv/bin/python bench/run.py            full run (~12 min)
    .venv/bin/python bench/run.py --quick    smoke run (~2 min)

`--only proxy` (benchmarks 1, 2 and the proxy's memory), `--only stack` (3, 4, 5),
`--only discovery` (a 1,000-deployment listing and the fleet's cost) or `--only oci-monitoring`
(OCI Monitoring calls per minute for 1, 50 and 500 deployments, ~35 s) runs a part;
`--pythonpath DIR` puts DIR before the repository for the proxy and the stack, to measure a
patched copy of app/ with the same harness. All traffic stays on 127.0.0.1, every loop is bounded,
and every process started is stopped on exit.

Run on their own, not from here: `bench/replicas_bench.py` (several replicas behind one
deployment) and `bench/central_bench.py` (agent against server mode, ~13 min).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, discovery_bench, oci_monitoring_bench, proxy_bench, stack_bench
from bench.fixtures import Workspace
from bench.payloads import build_all
from bench.report import markdown

PARTS = ("proxy", "stack", "discovery", "oci-monitoring")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, shorter windows")
    parser.add_argument("--only", choices=PARTS, action="append")
    parser.add_argument("--pythonpath", action="append", default=[], metavar="DIR")
    parser.add_argument("--output", type=Path, default=common.RESULTS_DIR)
    args = parser.parse_args(argv)
    common.EXTRA_PYTHONPATH[:] = [str(Path(p).resolve()) for p in args.pythonpath]
    parts = args.only or list(PARTS)

    started = time.monotonic()
    stamp = common.utc_stamp()
    results: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "started_at": stamp,
        "pythonpath": common.EXTRA_PYTHONPATH,
        "machine": common.machine(),
        "loadavg_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    payloads = build_all()
    results["payloads"] = {
        p.name: {"bytes": len(p.body), "gzip_bytes": len(p.gzipped), "series": p.series}
        for p in payloads.values()
    }
    with Workspace(payloads) as workspace:
        for part in parts:
            section_started = time.monotonic()
            print(f"bench: running {part} benchmarks ...", file=sys.stderr, flush=True)
            if part == "discovery":
                results[part] = discovery_bench.run(args.quick)
            elif part == "oci-monitoring":
                results[part] = oci_monitoring_bench.run(args.quick)
            else:
                module = proxy_bench if part == "proxy" else stack_bench
                results[part] = module.run(workspace, args.quick)
            results[part]["duration_s"] = time.monotonic() - section_started
    results["loadavg_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    results["duration_s"] = time.monotonic() - started

    summary = markdown(results) + oci_monitoring_markdown(results.get("oci-monitoring"))
    common.save_results(args.output / f"{stamp}-{results['mode']}.json", results, summary)
    return 0


def oci_monitoring_markdown(part: dict[str, Any] | None) -> str:
    """The OCI Monitoring table of docs/performance.md (section 8), from `oci_monitoring_bench`."""
    if not part:
        return ""
    lines = [
        "",
        f"### 8. OCI Monitoring: calls per minute (median of {part['rounds']} steady rounds)",
        "",
        "| deployments | SummarizeMetricsData / min | ListMetrics pages per refresh | calls / min "
        "| one call per metric per deployment | round median | vs 1 deployment | gauges |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for fleet in part["fleets"]:
        lines.append(
            f"| {fleet['deployments']} | {fleet['summarize_calls_per_minute']:g} "
            f"| {fleet['list_pages_per_refresh']} | {fleet['calls_per_minute']:.1f} "
            f"| {fleet['per_deployment_calls_per_minute']:,} | {fleet['round_median_s']:.2f} s "
            f"| {fleet['round_over_one_deployment']:.2f}x | {fleet['series_exposed']:,} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
