"""Benchmarks 1 and 2, and the proxy's own memory: one proxy process, api_key signing.

1. CPU per scrape: the proxy (its threads' on-CPU time from /proc around N sequential scrapes by
   a separate client) against the bare loop and the seed's approach (`bench.loops`, each in its own
   process measuring itself), interleaved repeat by repeat so drift hits all three alike.
2. Latency at 1, 10 and 100 concurrent scrapers, each on its own connection and target, straight
   to the upstream and through the proxy, same client, same payload, same run.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from bench.client import load
from bench.common import (
    PYTHON,
    ROOT,
    cpu_seconds_ns,
    median,
    percentile,
    rss_bytes,
    subprocess_env,
)
from bench.fixtures import Workspace, proxy

LATENCY_TARGETS = 100
CONCURRENCY = (1, 10, 100)


@dataclass(frozen=True)
class Plan:
    repeats: int
    proxy_iterations: dict[str, int]
    bare_iterations: dict[str, int]
    bare_async_iterations: dict[str, int]
    seed_iterations: dict[str, int]
    latency_requests: dict[int, int]

    @classmethod
    def for_mode(cls, quick: bool) -> Plan:
        if quick:
            return cls(
                repeats=3,
                proxy_iterations={"p50k": 150, "p1m": 60},
                bare_iterations={"p50k": 150, "p1m": 60},
                bare_async_iterations={"p50k": 150, "p1m": 60},
                seed_iterations={"p50k": 20, "p1m": 12},
                latency_requests={1: 200, 10: 500, 100: 1000},
            )
        return cls(
            repeats=5,
            proxy_iterations={"p50k": 500, "p1m": 200},
            bare_iterations={"p50k": 500, "p1m": 200},
            bare_async_iterations={"p50k": 500, "p1m": 200},
            seed_iterations={"p50k": 60, "p1m": 40},
            latency_requests={1: 1000, 10: 3000, 100: 6000},
        )


def _loop(mode: str, url: str, config: str, iterations: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            PYTHON,
            "-m",
            "bench.loops",
            mode,
            f"--url={url}",
            f"--config={config}",
            f"--iterations={iterations}",
            "--repeats=1",
            "--warmup=10",
        ],
        env=subprocess_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    data = json.loads(out.stdout)
    return {
        "cpu_ms": data["cpu_ms"][0],
        "wall_ms": data["wall_ms"][0],
        "body_bytes": data["body_bytes"],
    }


def _proxy_window(pid: int, port: int, path: str, iterations: int) -> dict[str, float]:
    before, wall = cpu_seconds_ns(pid), time.perf_counter()
    result = load(port, [path], 1, iterations)
    elapsed = time.perf_counter() - wall
    if set(result.statuses) != {200}:
        raise RuntimeError(f"proxy answered {result.statuses}")
    return {
        "cpu_ms": (cpu_seconds_ns(pid) - before) * 1000 / iterations,
        "wall_ms": elapsed * 1000 / iterations,
        "body_bytes": result.body_bytes / iterations,
    }


def cpu_benchmark(
    workspace: Workspace, pid: int, port: int, plan: Plan, targets: dict[str, str]
) -> dict[str, Any]:
    config = str(workspace.credentials.config_path)
    results: dict[str, Any] = {}
    for payload in ("p50k", "p1m"):
        url = targets[payload]
        path = f"/targets/{payload}/metrics"
        load(port, [path], 1, 30)  # warm-up: connection pool, code paths
        runs: dict[str, list[dict[str, Any]]] = {
            "proxy": [],
            "bare": [],
            "bare-async": [],
            "seed": [],
        }
        for _ in range(plan.repeats):
            runs["proxy"].append(_proxy_window(pid, port, path, plan.proxy_iterations[payload]))
            runs["bare"].append(_loop("bare", url, config, plan.bare_iterations[payload]))
            runs["bare-async"].append(
                _loop("bare-async", url, config, plan.bare_async_iterations[payload])
            )
            runs["seed"].append(_loop("seed", url, config, plan.seed_iterations[payload]))
        summary = {
            name: {
                "cpu_ms_median": median(r["cpu_ms"] for r in rows),
                "wall_ms_median": median(r["wall_ms"] for r in rows),
                "runs": rows,
            }
            for name, rows in runs.items()
        }
        proxy_ms = summary["proxy"]["cpu_ms_median"]
        results[payload] = {
            "body_bytes": len(workspace.payloads[payload].body),
            "gzip_bytes": len(workspace.payloads[payload].gzipped),
            "series": workspace.payloads[payload].series,
            "iterations": {
                "proxy": plan.proxy_iterations[payload],
                "bare": plan.bare_iterations[payload],
                "bare-async": plan.bare_async_iterations[payload],
                "seed": plan.seed_iterations[payload],
            },
            **summary,
            "proxy_over_bare": proxy_ms / summary["bare"]["cpu_ms_median"],
            "proxy_over_bare_async": proxy_ms / summary["bare-async"]["cpu_ms_median"],
            "seed_over_proxy": summary["seed"]["cpu_ms_median"] / proxy_ms,
        }
    return results


def latency_benchmark(
    workspace: Workspace, pid: int, port: int, plan: Plan, targets: dict[str, str]
) -> dict[str, Any]:
    names = [f"lat{i:03d}" for i in range(LATENCY_TARGETS)]
    direct_paths = [
        "/unsigned" + targets[name].split(str(workspace.upstream_port), 1)[1] for name in names
    ]
    proxy_paths = [f"/targets/{name}/metrics" for name in names]
    results: dict[str, Any] = {}
    for concurrency in CONCURRENCY:
        total = plan.latency_requests[concurrency]
        row: dict[str, Any] = {"requests": total}
        for label, target_port, paths in (
            ("direct", workspace.upstream_port, direct_paths),
            ("proxy", port, proxy_paths),
        ):
            load(target_port, paths[:concurrency], concurrency, concurrency * 3)  # warm-up
            cpu_before, wall = cpu_seconds_ns(pid), time.perf_counter()
            result = load(target_port, paths[:concurrency], concurrency, total)
            elapsed = time.perf_counter() - wall
            ms = [latency * 1000 for latency in result.latencies]
            row[label] = {
                "p50_ms": percentile(ms, 50),
                "p99_ms": percentile(ms, 99),
                "max_ms": max(ms),
                "requests_per_s": total / elapsed,
                "statuses": {str(k): v for k, v in result.statuses.items()},
                "proxy_cpu_ms_per_request": (cpu_seconds_ns(pid) - cpu_before) * 1000 / total,
            }
        row["added_p50_ms"] = row["proxy"]["p50_ms"] - row["direct"]["p50_ms"]
        row["added_p99_ms"] = row["proxy"]["p99_ms"] - row["direct"]["p99_ms"]
        results[str(concurrency)] = row
    return results


def run(workspace: Workspace, quick: bool) -> dict[str, Any]:
    plan = Plan.for_mode(quick)
    targets = {"p50k": workspace.url("p50k"), "p1m": workspace.url("p1m")}
    targets.update({f"lat{i:03d}": workspace.url("p50k") for i in range(LATENCY_TARGETS)})
    with proxy(workspace, targets) as (process, port):
        time.sleep(1.0)  # let start-up settle before the idle reading
        idle = rss_bytes(process.pid)
        cpu = cpu_benchmark(workspace, process.pid, port, plan, targets)
        latency = latency_benchmark(workspace, process.pid, port, plan, targets)
        after = rss_bytes(process.pid)
        peak = rss_bytes(process.pid, "VmHWM")
    stats = workspace.upstream_stats()
    return {
        "plan": plan.__dict__
        | {"latency_requests": {str(k): v for k, v in plan.latency_requests.items()}},
        "targets_configured": len(targets),
        "cpu": cpu,
        "latency": latency,
        "proxy_memory": {
            "idle_rss_mib": idle / 2**20,
            "after_load_rss_mib": after / 2**20,
            "peak_rss_mib": peak / 2**20,
        },
        "upstream_signature_checks": stats,
    }
