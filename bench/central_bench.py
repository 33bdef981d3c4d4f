"""Memory and CPU of the stack in agent mode against server mode (issue 14), same run, same load.

    .venv/bin/python bench/central_bench.py            full run (~12 min)
    .venv/bin/python bench/central_bench.py --quick    smoke run (~4 min)

Both modes remote-write every sample into one real VictoriaMetrics on loopback (testkit/receivers),
so the only difference is what Prometheus keeps locally: server mode its TSDB (head block, WAL,
rule evaluation), agent mode only a WAL that it truncates once samples are delivered. Each stack
scrapes N deployments on the benchmark's signature-checking upstream (the 50 kB vLLM page of
`bench.payloads`, API-key signed), at 20 and 200 deployments.

Per stack: once every deployment's `up` has reached the receiver and two more scrape intervals have
passed, a measured window samples the RSS/PSS of the process tree of `aqua-metrics start` every 5 s
(medians) and takes the CPU time of Prometheus and of the proxy over the window from /proc. The
receiver's own figures are not part of the stack. Modes alternate per size so drift on the shared
machine hits both alike; ratios are agent / server of the same size in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    RESULTS_DIR,
    cpu_seconds,
    machine,
    process_name,
    process_tree,
    save_results,
    tree_memory,
    utc_stamp,
)
from bench.fixtures import Workspace
from bench.payloads import build_all
from testkit.receivers import QueryError, VictoriaMetrics
from testkit.stack import Stack, short_tmp_dir

SIZES = (20, 200)
MODES = ("server", "agent")


def _pid_of(root: int, wanted: str) -> int:
    """The process of the tree named `wanted` (`bench.common.process_name`: `prometheus`, or
    `app proxy` for `python -m app proxy`)."""
    for pid in process_tree(root):
        if process_name(pid) == wanted:
            return pid
    raise RuntimeError(f"no process named {wanted!r} under {root}")


def _wait_delivered(receiver: VictoriaMetrics, monitor: str, size: int, timeout: float) -> float:
    started = time.monotonic()
    expr = f'count(up{{job="vllm", aqua_monitor="{monitor}"}} == 1)'
    while time.monotonic() - started < timeout:
        try:
            result = receiver.query(expr)
        except QueryError:
            result = []
        if result and float(result[0]["value"][1]) >= size:
            return time.monotonic() - started
        time.sleep(1)
    raise RuntimeError(f"{monitor}: {size} deployments not delivered within {timeout}s")


def measure(
    workspace: Workspace,
    receiver: VictoriaMetrics,
    mode: str,
    size: int,
    interval: int,
    window: int,
) -> dict[str, Any]:
    monitor = f"bench-{mode}-{size}-{time.time_ns()}"
    stack = Stack.create(
        TARGETS=",".join(f"d{i:03d}={workspace.url('p50k')}" for i in range(size)),
        SCRAPE_INTERVAL=f"{interval}s",
        LOG_LEVEL="warning",
        PROMETHEUS_MODE=mode,
        REMOTE_WRITE_URL=receiver.write_url,
        MONITOR_NAME=monitor,
        **workspace.oci_env(),
    )
    try:
        started = time.monotonic()
        stack.start()
        delivered = _wait_delivered(receiver, monitor, size, 120 + 3 * interval)
        time.sleep(2 * interval)  # settle: two more scrapes of every deployment
        assert stack.process is not None
        root = stack.process.pid
        prometheus, proxy = _pid_of(root, "prometheus"), _pid_of(root, "app proxy")
        cpu_before = {"prometheus": cpu_seconds(prometheus), "proxy": cpu_seconds(proxy)}
        rss: list[float] = []
        pss: list[float] = []
        prometheus_rss: list[float] = []
        window_start = time.monotonic()
        while time.monotonic() - window_start < window:
            memory = tree_memory(root)
            rss.append(float(memory["rss_mib"]))  # type: ignore[arg-type]
            pss.append(float(memory["pss_mib"]))  # type: ignore[arg-type]
            rows = memory["processes"]  # type: ignore[assignment]
            prometheus_rss += [r["rss_mib"] for r in rows if r["pid"] == prometheus]  # type: ignore[index,union-attr]
            time.sleep(min(5.0, max(0.0, window - (time.monotonic() - window_start))))
        wall = time.monotonic() - window_start
        cpu = {
            "prometheus": cpu_seconds(prometheus) - cpu_before["prometheus"],
            "proxy": cpu_seconds(proxy) - cpu_before["proxy"],
        }
        sent = receiver.query(
            "sum(rate(prometheus_remote_storage_samples_total"
            f'{{aqua_monitor="{monitor}"}}[{int(wall)}s]))'
        )
        return {
            "mode": mode,
            "deployments": size,
            "interval_seconds": interval,
            "delivered_after_s": delivered,
            "settled_after_s": time.monotonic() - started - wall,
            "window_s": wall,
            "stack_rss_median_mib": statistics.median(rss),
            "stack_pss_median_mib": statistics.median(pss),
            "prometheus_rss_median_mib": statistics.median(prometheus_rss),
            "cpu_share_of_one_core": {role: value / wall for role, value in cpu.items()},
            "samples_sent_per_s": float(sent[0]["value"][1]) if sent else None,
        }
    finally:
        stack.cleanup()


def summary(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| deployments | mode | stack RSS (PSS) MiB | Prometheus RSS MiB | Prometheus CPU | "
        "proxy CPU | samples sent / s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        cpu = row["cpu_share_of_one_core"]
        lines.append(
            f"| {row['deployments']} | {row['mode']} | {row['stack_rss_median_mib']:.1f} "
            f"({row['stack_pss_median_mib']:.1f}) | {row['prometheus_rss_median_mib']:.1f} | "
            f"{cpu['prometheus']:.1%} | {cpu['proxy']:.1%} | {row['samples_sent_per_s'] or 0:.0f} |"
        )
    for size in SIZES:
        by_mode = {r["mode"]: r for r in rows if r["deployments"] == size}
        if set(by_mode) == set(MODES):
            agent, server = by_mode["agent"], by_mode["server"]
            lines.append(
                f"\nagent / server at {size}: stack RSS "
                f"{agent['stack_rss_median_mib'] / server['stack_rss_median_mib']:.2f}, "
                f"Prometheus RSS "
                f"{agent['prometheus_rss_median_mib'] / server['prometheus_rss_median_mib']:.2f}, "
                "Prometheus CPU "
                f"{agent['cpu_share_of_one_core']['prometheus'] / server['cpu_share_of_one_core']['prometheus']:.2f}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 s scrapes, 30 s windows")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    interval, window = (5, 30) if args.quick else (15, 120)
    stamp = utc_stamp()
    rows: list[dict[str, Any]] = []
    receiver = VictoriaMetrics(short_tmp_dir("vm-bench-")).start()
    try:
        with Workspace(build_all()) as workspace:
            for size in SIZES:
                for mode in MODES:
                    print(f"central bench: {mode} at {size} ...", file=sys.stderr, flush=True)
                    rows.append(measure(workspace, receiver, mode, size, interval, window))
    finally:
        receiver.cleanup()
    path = args.output / f"{stamp}-central-{'quick' if args.quick else 'full'}.json"
    save_results(path, {"machine": machine(), "rows": rows}, summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
