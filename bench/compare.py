"""A/B of proxy variants: CPU per scrape one at a time, and a burst of 100 concurrent scrapes.

    .venv/bin/python bench/compare.py "" /tmp/patched-a /tmp/patched-b [--rounds 2]

Each argument is a directory put before the repository on the proxy's PYTHONPATH ("" is the
repository as is). Every variant gets a fresh proxy per round (a pool's history changes the
burst figures), rounds interleave the variants, and all share one upstream and one client.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common
from bench.client import load
from bench.fixtures import Workspace, proxy
from bench.payloads import build_all

BURST_TARGETS = 100


def measure(workspace: Workspace, targets: dict[str, str], scrapes: int, burst: int) -> str:
    with proxy(workspace, targets) as (process, port):
        parts = []
        for payload in ("p50k", "p1m"):
            path = f"/targets/{payload}/metrics"
            load(port, [path], 1, 50)
            before = common.cpu_seconds_ns(process.pid)
            load(port, [path], 1, scrapes)
            cpu_ms = (common.cpu_seconds_ns(process.pid) - before) * 1000 / scrapes
            parts.append(f"{payload} {cpu_ms:.3f} ms")
        paths = [f"/targets/b{i:03d}/metrics" for i in range(BURST_TARGETS)]
        load(port, paths, BURST_TARGETS, 3 * BURST_TARGETS)
        before, wall = common.cpu_seconds_ns(process.pid), time.perf_counter()
        result = load(port, paths, BURST_TARGETS, burst)
        elapsed = time.perf_counter() - wall
        cpu_ms = (common.cpu_seconds_ns(process.pid) - before) * 1000 / burst
        ms = [latency * 1000 for latency in result.latencies]
        parts.append(
            f"c{BURST_TARGETS} {cpu_ms:.2f} ms/scrape, p50 {common.percentile(ms, 50):.0f} ms, "
            f"p99 {common.percentile(ms, 99):.0f} ms, {burst / elapsed:.0f}/s, {result.statuses}"
        )
        return " | ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", help='PYTHONPATH dirs; "" for the repository')
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scrapes", type=int, default=1000)
    parser.add_argument("--burst", type=int, default=3000)
    args = parser.parse_args()
    with Workspace(build_all()) as workspace:
        targets = {"p50k": workspace.url("p50k"), "p1m": workspace.url("p1m")}
        targets.update({f"b{i:03d}": workspace.url("p50k") for i in range(BURST_TARGETS)})
        for _ in range(args.rounds):
            for variant in args.variants:
                common.EXTRA_PYTHONPATH[:] = [variant] if variant else []
                line = measure(workspace, targets, args.scrapes, args.burst)
                print(f"{variant or 'as is'} | {line}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
