"""CPU per scrape through the real proxy for 1, 3 and 8 replicas picked at random (issue 11).

    .venv/bin/python -m bench.replicas_proxy_bench            full run (~2 min)
    .venv/bin/python -m bench.replicas_proxy_bench --quick    smoke run

`aqua-metrics proxy` runs as its own process with API-key signing (`bench.fixtures`), so every
fetch is signed and its CPU counted; the deployments are `bench.replica_upstream` (its own
process; a fraction of the signatures checked by the independent verifier; the workspace's
plain `bench.upstream` also runs, idle): one target whose
endpoint is 1 replica, one of 3 and one of 8, each request answered by a replica picked at random
as a model deployment's load balancer does. The targets come from TARGETS, so the proxy learns
the replica counts as it would without discovery. Pages: the p50k (or p1m) vLLM payload with the
process families real vLLM puts first, each replica its own start time.

Per case: the proxy's on-CPU time (/proc) around N sequential scrapes by a separate client, and
the fetches those scrapes made (the proxy's own `aqua_proxy_scrape_fetches`); cases interleaved
repeat by repeat so drift hits all alike; medians of repeats; ratios against the 1-replica target
of the same run.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client.parser import text_string_to_metric_families

from bench import common
from bench.client import load
from bench.common import PYTHON, ROOT, cpu_seconds_ns, median, rss_bytes, subprocess_env
from bench.fixtures import Workspace, proxy, stop_process
from bench.payloads import Payload
from bench.replicas_bench import build_pages
from bench.saved_run import bench_main
from testkit.ports import free_port

REPLICAS = (1, 3, 8)


def replica_payloads(payload: str) -> dict[str, Payload]:
    """`r<n>@<k>`: replica k of the n-replica deployment, as plain text and gzipped."""
    pages = build_pages(payload, max(REPLICAS))
    return {
        f"r{n}@{k}": Payload(f"r{n}@{k}", page, gzip.compress(page, 6), series=0, groups=1)
        for n in REPLICAS
        for k, page in enumerate(pages[:n])
    }


def _fetch_counts(port: int) -> dict[str, tuple[float, float]]:
    """Per deployment: (sum, count) of the proxy's fetches-per-scrape histogram."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    counts: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "aqua_proxy_scrape_fetches":
            continue
        for sample in family.samples:
            row = counts.setdefault(sample.labels["deployment"], [0.0, 0.0])
            if sample.name.endswith("_sum"):
                row[0] = sample.value
            elif sample.name.endswith("_count"):
                row[1] = sample.value
    return {name: (row[0], row[1]) for name, row in counts.items()}


def _window(pid: int, port: int, name: str, scrapes: int) -> dict[str, float]:
    fetches_before = _fetch_counts(port).get(name, (0.0, 0.0))[0]
    cpu_before, wall = cpu_seconds_ns(pid), time.perf_counter()
    result = load(port, [f"/targets/{name}/metrics"], 1, scrapes)
    elapsed = time.perf_counter() - wall
    cpu = cpu_seconds_ns(pid) - cpu_before
    if set(result.statuses) != {200}:
        raise RuntimeError(f"proxy answered {result.statuses} for {name}")
    fetches = _fetch_counts(port)[name][0] - fetches_before
    return {
        "cpu_ms": cpu * 1000 / scrapes,
        "wall_ms": elapsed * 1000 / scrapes,
        "fetches": fetches / scrapes,
        "cpu_ms_per_fetch": cpu * 1000 / fetches,
        "body_bytes": result.body_bytes / scrapes,
    }


def measure(payload: str, quick: bool) -> dict[str, Any]:
    scrapes = {1: 200, 3: 60, 8: 20} if quick else {1: 600, 3: 200, 8: 60}
    if payload == "p1m":
        scrapes = {n: max(10, count // 5) for n, count in scrapes.items()}
    repeats = 3 if quick else 7
    with Workspace(replica_payloads(payload)) as workspace:
        port = free_port()
        upstream = _start_replica_upstream(workspace, port)
        try:
            targets = {
                f"r{n}": f"http://127.0.0.1:{port}/r{n}/ocid1.datasciencemodeldeployment.oc1.iad."
                f"bench{n}/predict/metrics"
                for n in REPLICAS
            }
            with proxy(workspace, targets) as (process, proxy_port):
                for n in REPLICAS:  # warm-up: connections, code paths, replicas learned
                    load(proxy_port, [f"/targets/r{n}/metrics"], 1, 30)
                runs: dict[str, list[dict[str, float]]] = {f"r{n}": [] for n in REPLICAS}
                for _ in range(repeats):
                    for n in REPLICAS:
                        runs[f"r{n}"].append(_window(process.pid, proxy_port, f"r{n}", scrapes[n]))
                rss = rss_bytes(process.pid)
        finally:
            stop_process(upstream)
    summary: dict[str, Any] = {
        name: {
            key: median(run[key] for run in rows)
            for key in ("cpu_ms", "wall_ms", "fetches", "cpu_ms_per_fetch", "body_bytes")
        }
        | {"runs": rows}
        for name, rows in runs.items()
    }
    baseline = summary["r1"]["cpu_ms"]
    for row in summary.values():
        row["over_1_replica"] = row["cpu_ms"] / baseline
    return {
        "page_bytes": len(workspace.payloads["r1@0"].body),
        "gzip_bytes": len(workspace.payloads["r1@0"].gzipped),
        "scrapes": scrapes,
        "repeats": repeats,
        "proxy_rss_mib_after": rss / 2**20,
        "cases": summary,
    }


def _start_replica_upstream(workspace: Workspace, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "bench.replica_upstream",
            f"--port={port}",
            f"--payload-dir={workspace.dir / 'payloads'}",
            f"--public-key={workspace.credentials.key.public_path}",
            f"--key-id={workspace.credentials.key_id}",
            "--verify-every=20",
            "--max-seconds=3600",
        ],
        env=subprocess_env(),
        cwd=ROOT,
    )
    common.wait_for_port(port)
    return process


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"## Replicas through the proxy: CPU per scrape ({results['mode']} run, "
        f"{results['started_at']}, commit {results['commit']})",
        "",
        "Proxy process CPU per scrape (median of repeats), API-key signing on every fetch, "
        "replicas picked at random per request; ratio against the 1-replica target, same run.",
        "",
        "| page | replicas | fetches / scrape | CPU ms / scrape | x 1 replica | CPU ms / fetch |",
        "|---|---|---|---|---|---|",
    ]
    for payload, row in results["payloads"].items():
        for n in REPLICAS:
            case = row["cases"][f"r{n}"]
            lines.append(
                f"| {payload} ({row['page_bytes'] / 1000:.0f} kB) | {n} | {case['fetches']:.1f} | "
                f"{case['cpu_ms']:.2f} | {case['over_1_replica']:.1f}x | "
                f"{case['cpu_ms_per_fetch']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    return bench_main(
        argv,
        description=__doc__.splitlines()[0],
        name="replicas-proxy",
        quick_help="fewer scrapes and repeats",
        run=lambda args: {
            "payloads": {p: measure(p, args.quick) for p in args.payloads.split(",")}
        },
        markdown=markdown,
        options=lambda parser: parser.add_argument(
            "--payloads", default="p50k", help="comma separated: p50k,p1m"
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
