"""The proxy's memory with 1,000 targets, as a running process (issue 10).

    .venv/bin/python -m bench.fleet_memory_bench            full run (3 repeats, ~1 min)
    .venv/bin/python -m bench.fleet_memory_bench --quick    one repeat

`aqua-metrics proxy` runs as its own process (API-key signing, `bench.fixtures`) with TARGETS
listing 1,000 deployments (short URLs: see `_one_proxy`) on the fast stand-in upstream (`bench.upstream`, the p50k vLLM page,
gzipped as vLLM sends it), and, in the same run, with 1 target as the baseline. Read from /proc:
RSS once started (idle), after every target was scraped once (each target's upstream client,
replica tracker and metric series now exist), after a second round (steady state), and the peak
(VmHWM). Scrapes go 50 at a time, each on its own connection, as Prometheus spreads a scrape
interval over its targets. Medians of repeats; per-target figures are (1,000 - baseline) / 999.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.client import load
from bench.common import median, rss_bytes
from bench.fixtures import Workspace, proxy
from bench.payloads import SIZES, build_payload
from bench.saved_run import bench_main

FLEET = 1000
BATCH = 50
SETTLE_SECONDS = 1.0  # after readiness, before the idle reading (start-up allocations finish)


def _round(port: int, names: list[str]) -> None:
    """Scrape every target once, BATCH at a time."""
    for start in range(0, len(names), BATCH):
        paths = [f"/targets/{name}/metrics" for name in names[start : start + BATCH]]
        result = load(port, paths, len(paths), len(paths))
        if set(result.statuses) != {200}:
            raise RuntimeError(f"proxy answered {result.statuses}")


def _one_proxy(workspace: Workspace, count: int) -> dict[str, float]:
    names = [f"md{index:04d}" for index in range(count)]
    # Short paths: 1,000 real deployment URLs (~150 characters each) would pass Linux's 128 KiB
    # limit on one environment variable; the proxy holds the URL strings either way.
    base = f"http://127.0.0.1:{workspace.upstream_port}/p50k"
    targets = {name: f"{base}/{name}/predict/metrics" for name in names}
    with proxy(workspace, targets) as (process, port):
        time.sleep(SETTLE_SECONDS)
        idle = rss_bytes(process.pid)
        started = time.perf_counter()
        _round(port, names)
        first_round = time.perf_counter() - started
        after_one = rss_bytes(process.pid)
        _round(port, names)
        after_two = rss_bytes(process.pid)
        peak = rss_bytes(process.pid, "VmHWM")
    return {
        "idle_mib": idle / 2**20,
        "after_one_round_mib": after_one / 2**20,
        "after_two_rounds_mib": after_two / 2**20,
        "peak_mib": peak / 2**20,
        "first_round_s": first_round,
    }


def run(quick: bool) -> dict[str, Any]:
    repeats = 1 if quick else 3
    payload = build_payload("p50k", SIZES["p50k"])
    runs: dict[str, list[dict[str, float]]] = {"1": [], str(FLEET): []}
    with Workspace({"p50k": payload}) as workspace:
        for _ in range(repeats):
            for count in (1, FLEET):
                runs[str(count)].append(_one_proxy(workspace, count))
    medians = {
        count: {key: median(row[key] for row in rows) for key in rows[0]}
        for count, rows in runs.items()
    }
    one, fleet = medians["1"], medians[str(FLEET)]
    per_target_kib = {
        key: (fleet[key] - one[key]) * 1024 / (FLEET - 1)
        for key in ("idle_mib", "after_one_round_mib", "after_two_rounds_mib")
    }
    return {
        "page_bytes": len(payload.body),
        "gzip_bytes": len(payload.gzipped),
        "repeats": repeats,
        "medians": medians,
        "per_target_kib": per_target_kib,
        "runs": runs,
    }


def markdown(results: dict[str, Any]) -> str:
    one, fleet = results["medians"]["1"], results["medians"][str(FLEET)]
    per = results["per_target_kib"]
    lines = [
        f"## Proxy memory with {FLEET:,} targets ({results['mode']} run, {results['started_at']}, "
        f"commit {results['commit']})",
        "",
        "| RSS of the proxy process | 1 target | 1,000 targets | per added target |",
        "|---|---|---|---|",
        f"| started, idle | {one['idle_mib']:.1f} MiB | {fleet['idle_mib']:.1f} MiB | "
        f"{per['idle_mib']:.1f} KiB |",
        f"| after one scrape of every target | {one['after_one_round_mib']:.1f} MiB | "
        f"{fleet['after_one_round_mib']:.1f} MiB | {per['after_one_round_mib']:.1f} KiB |",
        f"| after a second round | {one['after_two_rounds_mib']:.1f} MiB | "
        f"{fleet['after_two_rounds_mib']:.1f} MiB | {per['after_two_rounds_mib']:.1f} KiB |",
        f"| peak (VmHWM) | {one['peak_mib']:.1f} MiB | {fleet['peak_mib']:.1f} MiB | |",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    return bench_main(
        argv,
        description=__doc__.splitlines()[0],
        name="fleet-memory",
        quick_help="one repeat",
        run=lambda args: run(args.quick),
        markdown=markdown,
    )


if __name__ == "__main__":
    sys.exit(main())
