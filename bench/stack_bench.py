"""Benchmarks 3-5 on the real stack (`aqua-metrics start`: supervisord, proxy, Prometheus, the
fatal-event listener), run by testkit/stack.py against the fast upstream.

3. Memory: RSS (and PSS) of every process in the tree of `aqua-metrics start`, with 1, 20 and 200
   deployments, once every target has been scraped and two more scrape intervals have passed.
4. Scale: 200 deployments for a measured window; failed scrapes from Prometheus (`up`) and from the
   proxy (`aqua_proxy_scrape_failures_total`), CPU of the proxy and of Prometheus from /proc, and
   Prometheus' ingestion rate from its own metrics.
5. Time from starting `aqua-metrics start` to the first stored vLLM sample (Prometheus API), demo
   mode and a real (signed) target.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bench.common import (
    cpu_seconds,
    median,
    process_name,
    process_tree,
    rss_bytes,
    subprocess_env,
    tree_memory,
)
from bench.fixtures import Workspace
from testkit.stack import Stack

FIRST_SAMPLE_QUERY = "vllm:num_requests_running"
POLL_SECONDS = 0.1
STARTUP_TIMEOUT = 120.0


@dataclass(frozen=True)
class Plan:
    interval_seconds: int
    startup_runs: int
    memory_sizes: tuple[int, ...]
    scale_targets: int
    scale_seconds: int

    @classmethod
    def for_mode(cls, quick: bool) -> Plan:
        if quick:
            return cls(5, 1, (1, 20, 200), 200, 20)
        return cls(15, 3, (1, 20, 200), 200, 300)


def _query_value(stack: Stack, expr: str) -> float | None:
    try:
        result = stack.query(expr)
    except (OSError, AssertionError):
        return None
    return float(result[0]["value"][1]) if result else None


def _wait(stack: Stack, expr: str, predicate: Any, timeout: float) -> float:
    """Seconds until `predicate(value of expr)` holds; raise after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        assert stack.process is not None
        if stack.process.poll() is not None:
            raise RuntimeError(f"stack exited early:\n{stack.logs()[-3000:]}")
        value = _query_value(stack, expr)
        if value is not None and predicate(value):
            return time.monotonic() - started
        time.sleep(POLL_SECONDS)
    raise RuntimeError(f"{expr!r} did not hold within {timeout}s:\n{stack.logs()[-3000:]}")


def _create(workspace: Workspace, deployments: int, interval: int) -> Stack:
    settings = {"SCRAPE_INTERVAL": f"{interval}s", "LOG_LEVEL": "warning"}
    if deployments:
        settings["TARGETS"] = ",".join(
            f"d{i:03d}={workspace.url('p50k')}" for i in range(deployments)
        )
        settings.update(workspace.oci_env())
    stack = Stack.create(**settings)
    stack.env["PYTHONPATH"] = subprocess_env()["PYTHONPATH"]  # honours run.py --pythonpath
    return stack


def _components(root: int) -> dict[str, int]:
    """pid of each program of the stack, by role."""
    roles: dict[str, int] = {}
    for pid in process_tree(root):
        name = process_name(pid)
        if pid == root:
            roles["start"] = pid
        elif name == "prometheus":
            roles["prometheus"] = pid
        elif "app proxy" in name:
            roles["proxy"] = pid
        elif "supervisord" in name:
            roles["supervisord"] = pid
        elif "fatal-listener" in name:
            roles["fatal-listener"] = pid
    return roles


def startup_run(workspace: Workspace, deployments: int, interval: int) -> dict[str, Any]:
    """Start the stack, time the first stored sample and readiness, then stop it."""
    stack = _create(workspace, deployments, interval)
    try:
        started = time.monotonic()
        stack.start(wait=False)
        first_sample = ready_line = None
        while first_sample is None or ready_line is None:
            elapsed = time.monotonic() - started
            assert stack.process is not None
            if elapsed > STARTUP_TIMEOUT or stack.process.poll() is not None:
                raise RuntimeError(f"no sample within {elapsed:.0f}s:\n{stack.logs()[-3000:]}")
            if ready_line is None and "aqua-metrics: ready" in stack.logs():
                ready_line = elapsed
            if first_sample is None and _query_value(stack, FIRST_SAMPLE_QUERY) is not None:
                first_sample = elapsed
            time.sleep(POLL_SECONDS)
        return {
            "deployments": deployments,
            "interval_seconds": interval,
            "first_sample_s": first_sample,
            "ready_line_s": ready_line,
        }
    finally:
        stack.cleanup()


def _scale_queries(stack: Stack, window: int) -> dict[str, float | None]:
    w = f"{window}s"
    queries = {
        "scrapes": f'sum(count_over_time(up{{job="vllm"}}[{w}]))',
        "successful_scrapes": f'sum(sum_over_time(up{{job="vllm"}}[{w}]))',
        "targets_up_now": 'sum(up{job="vllm"})',
        "proxy_failures_total": "sum(aqua_proxy_scrape_failures_total) or vector(0)",
        "proxy_non_200_upstream_total": (
            'sum(aqua_proxy_upstream_responses_total{code!="200"}) or vector(0)'
        ),
        "ingested_samples_per_s": f"sum(rate(prometheus_tsdb_head_samples_appended_total[{w}]))",
        "head_series": "sum(prometheus_tsdb_head_series)",
        "samples_per_scrape": 'avg(scrape_samples_scraped{job="vllm"})',
        "scrape_duration_avg_s": f'avg(avg_over_time(scrape_duration_seconds{{job="vllm"}}[{w}]))',
        "scrape_duration_max_s": f'max(max_over_time(scrape_duration_seconds{{job="vllm"}}[{w}]))',
        "duplicate_or_out_of_order_samples": (
            "sum(prometheus_target_scrapes_sample_duplicate_timestamp_total)"
            " + sum(prometheus_target_scrapes_sample_out_of_order_total)"
        ),
    }
    return {name: _query_value(stack, expr) for name, expr in queries.items()}


def memory_and_scale_run(
    workspace: Workspace, deployments: int, interval: int, scale_seconds: int
) -> dict[str, Any]:
    """Memory of the stack once settled; with `scale_seconds`, then a measured scale window."""
    stack = _create(workspace, deployments, interval)
    try:
        started = time.monotonic()
        stack.start(wait=False)
        all_up = _wait(stack, 'sum(up{job="vllm"})', lambda v: v >= deployments, 60 + 2 * interval)
        stack.wait_ready(timeout=60)
        time.sleep(2 * interval)
        assert stack.process is not None
        root = stack.process.pid
        roles = _components(root)
        row: dict[str, Any] = {
            "deployments": deployments,
            "interval_seconds": interval,
            "all_targets_up_s": all_up,
            "settled_after_s": time.monotonic() - started,
            "memory": tree_memory(root),
            "roles": {role: process_name(pid) for role, pid in roles.items()},
        }
        if scale_seconds:
            pids = {role: roles[role] for role in ("proxy", "prometheus", "supervisord")}
            cpu_before = {role: cpu_seconds(pid) for role, pid in pids.items()}
            window_start = time.monotonic()
            peak = 0.0
            while time.monotonic() - window_start < scale_seconds:
                time.sleep(min(5.0, scale_seconds - (time.monotonic() - window_start)))
                peak = max(peak, float(tree_memory(root)["rss_mib"]))  # type: ignore[arg-type]
            wall = time.monotonic() - window_start
            cpu = {role: cpu_seconds(pid) - cpu_before[role] for role, pid in pids.items()}
            results = _scale_queries(stack, int(wall))
            scrapes = results["scrapes"] or 0.0
            row["scale"] = {
                "window_s": wall,
                **results,
                "failed_scrapes": scrapes - (results["successful_scrapes"] or 0.0),
                "expected_scrapes": deployments * wall / interval,
                "cpu_seconds": cpu,
                "cpu_share_of_one_core": {role: value / wall for role, value in cpu.items()},
                "proxy_cpu_ms_per_scrape": cpu["proxy"] * 1000 / scrapes if scrapes else None,
                "stack_rss_peak_mib": peak,
                "memory_end": tree_memory(root),
                "proxy_rss_end_mib": rss_bytes(pids["proxy"]) / 2**20,
            }
        return row
    finally:
        stack.cleanup()


def run(workspace: Workspace, quick: bool) -> dict[str, Any]:
    plan = Plan.for_mode(quick)
    startup: dict[str, list[dict[str, Any]]] = {"demo": [], "real": []}
    for _ in range(plan.startup_runs):
        startup["demo"].append(startup_run(workspace, 0, plan.interval_seconds))
        startup["real"].append(startup_run(workspace, 1, plan.interval_seconds))
    startup_summary = {
        mode: {
            "first_sample_median_s": median(r["first_sample_s"] for r in runs),
            "first_sample_min_s": min(r["first_sample_s"] for r in runs),
            "first_sample_max_s": max(r["first_sample_s"] for r in runs),
            "ready_line_median_s": median(r["ready_line_s"] for r in runs),
            "runs": runs,
        }
        for mode, runs in startup.items()
    }
    memory = []
    for size in plan.memory_sizes:
        scale = plan.scale_seconds if size == plan.scale_targets else 0
        memory.append(memory_and_scale_run(workspace, size, plan.interval_seconds, scale))
    return {
        "plan": plan.__dict__,
        "startup": startup_summary,
        "stacks": memory,
        "upstream_signature_checks": workspace.upstream_stats(),
    }
