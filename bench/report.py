"""The markdown summary of a results file, and the verdict on each target of issue 5."""

from __future__ import annotations

from typing import Any

TARGETS = {
    "proxy_over_bare": 1.5,  # at most
    "seed_over_proxy": 15.0,  # at least
    "proxy_rss_mib": 100.0,  # at most, idle and after load
    "stack_rss_mib_at_20": 300.0,  # at most
}


def _f(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def verdicts(results: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for every target that this run measured."""
    rows: list[tuple[str, str, bool]] = []
    proxy = results.get("proxy")
    if proxy:
        for payload, cpu in proxy["cpu"].items():
            ratio = cpu["proxy_over_bare"]
            rows.append(
                (
                    f"{payload}: proxy CPU within 1.5x of the bare loop",
                    f"{ratio:.2f}x",
                    ratio <= TARGETS["proxy_over_bare"],
                )
            )
            ratio = cpu["seed_over_proxy"]
            rows.append(
                (
                    f"{payload}: at least 15x cheaper than the seed's approach",
                    f"{ratio:.1f}x",
                    ratio >= TARGETS["seed_over_proxy"],
                )
            )
        memory = proxy["proxy_memory"]
        for key in ("idle_rss_mib", "after_load_rss_mib"):
            rows.append(
                (
                    f"proxy RSS {key.removesuffix('_rss_mib').replace('_', ' ')} < 100 MiB",
                    f"{memory[key]:.1f} MiB",
                    memory[key] < TARGETS["proxy_rss_mib"],
                )
            )
    stack = results.get("stack")
    if stack:
        for row in stack["stacks"]:
            if row["deployments"] == 20:
                rss = row["memory"]["rss_mib"]
                rows.append(("stack RSS at 20 deployments < 300 MiB", f"{rss:.1f} MiB", rss < 300))
            scale = row.get("scale")
            if scale:
                failed = (scale["failed_scrapes"] or 0) + (scale["proxy_failures_total"] or 0)
                rows.append(
                    (
                        f"{row['deployments']} deployments for {scale['window_s']:.0f} s: "
                        "zero failed scrapes",
                        f"{scale['scrapes']:.0f} scrapes, {failed:.0f} failed",
                        failed == 0 and (scale["scrapes"] or 0) > 0,
                    )
                )
    return rows


def markdown(results: dict[str, Any]) -> str:
    lines: list[str] = []
    m = results["machine"]
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v != "absent")
    lines += [
        f"## aqua-metrics benchmarks ({results['mode']} run, {results['started_at']})",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, Linux "
        f"{m['kernel']}, Python {m['python']}, Prometheus {m['prometheus']}.",
        f"Packages: {packages}.",
        f"Load average before/after: {results['loadavg_before']} / {results['loadavg_after']} "
        f"(other work on the machine shows here). Total time {results['duration_s']:.0f} s.",
        "",
    ]
    proxy = results.get("proxy")
    if proxy:
        lines += [
            "### 1. Proxy CPU per scrape (median of repeats, ms of CPU, api_key signing)",
            "",
            "| payload | body / gzip | series | proxy | bare loop | bare async | seed | "
            "proxy / bare (<= 1.5) | proxy / bare async | seed / proxy (>= 15) |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for payload, cpu in proxy["cpu"].items():
            lines.append(
                f"| {payload} | {cpu['body_bytes'] / 1000:.0f} kB / {cpu['gzip_bytes'] / 1000:.1f}"
                f" kB | {cpu['series']} | {cpu['proxy']['cpu_ms_median']:.3f} | "
                f"{cpu['bare']['cpu_ms_median']:.3f} | {cpu['bare-async']['cpu_ms_median']:.3f} | "
                f"{cpu['seed']['cpu_ms_median']:.2f} | {cpu['proxy_over_bare']:.2f}x | "
                f"{cpu['proxy_over_bare_async']:.2f}x | {cpu['seed_over_proxy']:.1f}x |"
            )
        lines += [
            "",
            "### 2. Scrape latency, direct to the upstream vs through the proxy (p50k payload)",
            "",
            "| concurrent | direct p50 / p99 ms | proxy p50 / p99 ms | added p50 / p99 ms | "
            "proxy scrapes/s | proxy CPU ms/scrape | proxy statuses |",
            "|---|---|---|---|---|---|---|",
        ]
        for concurrency, row in proxy["latency"].items():
            d, p = row["direct"], row["proxy"]
            lines.append(
                f"| {concurrency} | {d['p50_ms']:.2f} / {d['p99_ms']:.2f} | {p['p50_ms']:.2f} / "
                f"{p['p99_ms']:.2f} | {row['added_p50_ms']:.2f} / {row['added_p99_ms']:.2f} | "
                f"{p['requests_per_s']:.0f} | {p['proxy_cpu_ms_per_request']:.2f} | "
                f"{p['statuses']} |"
            )
        mem = proxy["proxy_memory"]
        lines += [
            "",
            f"Proxy RSS ({proxy['targets_configured']} targets): idle "
            f"{mem['idle_rss_mib']:.1f} MiB, after load {mem['after_load_rss_mib']:.1f} MiB, "
            f"peak {mem['peak_rss_mib']:.1f} MiB (target < 100 MiB).",
            "",
        ]
    stack = results.get("stack")
    if stack:
        lines += [
            "### 3. Whole stack memory (tree of `aqua-metrics start`, Grafana off)",
            "",
            "| deployments | RSS sum MiB | PSS sum MiB | proxy | Prometheus | supervisord | "
            "start | listener |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in stack["stacks"]:
            by_role = {p["name"]: p["rss_mib"] for p in row["memory"]["processes"]}
            roles = row["roles"]

            def rss(role: str, by_role: dict[str, float] = by_role, roles: dict = roles) -> str:
                name = roles.get(role)
                return _f(by_role.get(name), 1) if name else "n/a"

            lines.append(
                f"| {row['deployments']} | {row['memory']['rss_mib']:.1f} | "
                f"{row['memory']['pss_mib']:.1f} | {rss('proxy')} | {rss('prometheus')} | "
                f"{rss('supervisord')} | {rss('start')} | {rss('fatal-listener')} |"
            )
        for row in stack["stacks"]:
            scale = row.get("scale")
            if not scale:
                continue
            share = scale["cpu_share_of_one_core"]
            lines += [
                "",
                f"### 4. Scale: {row['deployments']} deployments every "
                f"{row['interval_seconds']} s for {scale['window_s']:.0f} s",
                "",
                "| scrapes (expected) | failed (up == 0) | proxy failures | proxy CPU | "
                "proxy CPU ms/scrape | Prometheus CPU | ingestion samples/s | head series | "
                "scrape duration avg / max ms | peak stack RSS MiB |",
                "|---|---|---|---|---|---|---|---|---|---|",
                f"| {scale['scrapes']:.0f} ({scale['expected_scrapes']:.0f}) | "
                f"{scale['failed_scrapes']:.0f} | {scale['proxy_failures_total']:.0f} | "
                f"{share['proxy'] * 100:.1f}% of a core | "
                f"{_f(scale['proxy_cpu_ms_per_scrape'])} | {share['prometheus'] * 100:.1f}% | "
                f"{_f(scale['ingested_samples_per_s'], 0)} | {_f(scale['head_series'], 0)} | "
                f"{(scale['scrape_duration_avg_s'] or 0) * 1000:.1f} / "
                f"{(scale['scrape_duration_max_s'] or 0) * 1000:.1f} | "
                f"{scale['stack_rss_peak_mib']:.1f} |",
            ]
        lines += [
            "",
            "### 5. Time from `aqua-metrics start` to the first stored vLLM sample",
            "",
            "| mode | scrape interval | first sample median (min-max) s | 'ready' line median s |",
            "|---|---|---|---|",
        ]
        for mode, row in stack["startup"].items():
            interval = row["runs"][0]["interval_seconds"]
            lines.append(
                f"| {mode} | {interval} s | {row['first_sample_median_s']:.1f} "
                f"({row['first_sample_min_s']:.1f}-{row['first_sample_max_s']:.1f}) | "
                f"{row['ready_line_median_s']:.1f} |"
            )
        lines.append("")
    discovery = results.get("discovery")
    if discovery:
        lines += [
            f"### 7. Discovery: a listing of {discovery['deployments']} deployments "
            f"({discovery['pages_per_listing']} pages)",
            "",
            "| listing median s | bare SDK median s | ratio | build fleet s | fleet KiB/deployment "
            "| /sd view s | clients KiB/target | proxy RSS delta MiB |",
            "|---|---|---|---|---|---|---|---|",
            f"| {discovery['listing_median_s']:.3f} | {discovery['sdk_only_median_s']:.3f} | "
            f"{discovery['listing_over_sdk_only']:.2f} | {discovery['build_fleet_median_s']:.3f} | "
            f"{discovery['held_kib_per_deployment']:.2f} | "
            f"{discovery['target_view_median_s']:.4f} | "
            f"{discovery['clients_kib_per_target']:.2f} | {discovery['proxy_rss_delta_mib']:.1f} |",
            "",
        ]
    # The upstream's counters cover the whole run: the last section's reading has them all.
    checks = [results[k]["upstream_signature_checks"] for k in ("proxy", "stack") if k in results]
    if checks:
        lines += [
            f"Upstream signature checks over the run (sampled): {checks[-1]['verified']} "
            f"verified, {checks[-1]['rejected']} rejected, of {checks[-1]['metrics']} scrapes.",
            "",
        ]
    lines += ["### Targets", "", "| target | measured | verdict |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {_met(ok)} |" for name, value, ok in verdicts(results)]
    return "\n".join(lines) + "\n"
