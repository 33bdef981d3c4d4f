"""CPU per scrape of the replica merge (issue 11), against today's plain forward, same run.

    .venv/bin/python bench/replicas_bench.py            full run (~1 min)
    .venv/bin/python bench/replicas_bench.py --quick    smoke run

Everything runs in this process on one event loop, with `fetch()` returning prebuilt pages, so
the figures are the proxy's *added* work per scrape; the HTTP and signing work of each fetch is
what the proxy benchmark measures (about 1.2 ms of CPU per fetch of the 50 kB page, see
docs/performance.md) and is paid once per fetch. Cases, on real-sized vLLM pages (the demo's V1
page of `bench.payloads` plus the process/python families real vLLM exposes):

- `forward`: today's path: await one fetch, answer its bytes (the baseline);
- `1 pass-through`: gather() for a deployment with one replica (reads the start time; gzip: only
  as far as that line), relayed unchanged;
- `1 labelled`: the same with `label_single_replica=True` (decode, label, merge);
- `3` and `8`: gather() over 3 and 8 replicas with a known instance count and a balancer that
  answers round-robin (N fetches: the minimum; a random balancer needs about N*H(N) fetches, whose
  HTTP cost adds to these figures, not their merge cost);
- `client parser`: prometheus_client's `text_string_to_metric_families` over one page, the
  alternative to the line-level parser (parsing only, no relabelling or rendering).

Medians of repeats, each repeat timing all cases back to back so drift hits all alike.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.replicas.gather import FetchedPage, gather
from app.replicas.tracker import ReplicaTracker
from bench.payloads import SIZES, build_payload
from bench.saved_run import bench_main
from testkit.background_server import BackgroundHTTPServer, QuietHandler

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _process_families(start_time: float) -> bytes:
    """The families prometheus_client's default collectors put first on a real vLLM page."""
    return (
        "# HELP python_gc_objects_collected_total Objects collected during gc\n"
        "# TYPE python_gc_objects_collected_total counter\n"
        'python_gc_objects_collected_total{generation="0"} 15571.0\n'
        'python_gc_objects_collected_total{generation="1"} 3468.0\n'
        'python_gc_objects_collected_total{generation="2"} 1022.0\n'
        "# HELP python_info Python platform information\n"
        "# TYPE python_info gauge\n"
        'python_info{implementation="CPython",major="3",minor="12",patchlevel="3",'
        'version="3.12.3"} 1.0\n'
        "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
        "# TYPE process_resident_memory_bytes gauge\n"
        "process_resident_memory_bytes 2.147483648e+09\n"
        "# HELP process_start_time_seconds Start time of the process since unix epoch in "
        "seconds.\n"
        "# TYPE process_start_time_seconds gauge\n"
        f"process_start_time_seconds {start_time!r}\n"
        "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
        "# TYPE process_cpu_seconds_total counter\n"
        "process_cpu_seconds_total 5012.31\n"
    ).encode()


def build_pages(payload: str, count: int) -> list[bytes]:
    body = build_payload(payload, SIZES[payload]).body
    return [_process_families(1_795_000_000.0 + 977.13 * i) + body for i in range(count)]


def _round_robin(pages: list[FetchedPage]) -> Callable[[], Awaitable[FetchedPage]]:
    state = {"next": 0}

    async def fetch() -> FetchedPage:
        page = pages[state["next"] % len(pages)]
        state["next"] += 1
        return page

    return fetch


class _RoundRobinHandler(QuietHandler):
    """GET /<n>/<encoding>: the next of the first n pages, round-robin (keep-alive HTTP/1.1)."""

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle's algorithm and delayed
        # ACKs stall every response by ~40 ms (wall time only; the CPU figures do not change).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        server: _PageServer = self.owner
        count, encoding = self.path.strip("/").split("/")
        with server.lock:
            index = server.turns.get(self.path, 0)
            server.turns[self.path] = index + 1
        headers = {"Content-Type": CONTENT_TYPE}
        if encoding == "gzip":
            headers["Content-Encoding"] = "gzip"
        self.send_bytes(200, server.pages[encoding][index % int(count)], headers)


class _PageServer(BackgroundHTTPServer):
    """The pages, served round-robin per path from testkit's background server."""

    def __init__(self, pages: dict[str, list[bytes]]) -> None:
        self.pages = pages
        self.turns: dict[str, int] = {}
        self.lock = threading.Lock()
        super().__init__(_RoundRobinHandler)


def _http_fetch(client: httpx.AsyncClient, url: str) -> Callable[[], Awaitable[FetchedPage]]:
    """A fetch as the proxy does it: stream the raw (still encoded) bytes."""

    async def fetch() -> FetchedPage:
        async with client.stream("GET", url, headers={"accept-encoding": "gzip"}) as response:
            body = b"".join([chunk async for chunk in response.aiter_raw()])
            return FetchedPage(
                body, response.headers["content-type"], response.headers.get("content-encoding")
            )

    return fetch


LIMIT = 64 << 20  # SCRAPE_BODY_SIZE_LIMIT's default


def _tracker() -> ReplicaTracker:
    return ReplicaTracker(max_age_seconds=30.0, learn_window_seconds=60.0, max_retained_bytes=LIMIT)


async def _forward(fetch: Callable[[], Awaitable[FetchedPage]], iterations: int) -> int:
    size = 0
    for _ in range(iterations):
        page = await fetch()
        size += len(page.body)
    return size


async def _gather_loop(
    fetch: Callable[[], Awaitable[FetchedPage]],
    tracker: ReplicaTracker,
    iterations: int,
    **options: Any,
) -> int:
    size = 0
    for _ in range(iterations):
        result = await gather(
            fetch,
            tracker,
            deadline_seconds=10.0,
            max_fetches=40,
            max_unpacked_bytes=LIMIT,
            **options,
        )
        size += len(result.body)
    return size


def _cpu_ms(run: Callable[[], Any], iterations: int) -> float:
    """CPU of this thread only: the event loop, not the page server's threads."""
    started = time.thread_time()
    run()
    return (time.thread_time() - started) * 1000 / iterations


_Fetch = Callable[[], Awaitable[FetchedPage]]
# A timed case: what runs its iterations, and over how many replicas.
_Case = tuple[Callable[[], Any], int]


def _cases(
    prefix: str,
    encoding: str,
    fetch_over: Callable[[int], _Fetch],
    iterations: int,
    case: Callable[[Callable[[], Awaitable[int]]], Callable[[], Any]],
) -> dict[str, _Case]:
    """The forward, 1-replica (pass-through and labelled) and 3- and 8-replica cases, with pages
    from `fetch_over(n)` (a fetch cycling over n replicas), named `<prefix><case>/<encoding>`."""
    one = fetch_over(1)
    cases: dict[str, _Case] = {
        f"{prefix}forward/{encoding}": (case(lambda: _forward(one, iterations)), 1)
    }
    single = _tracker()
    cases[f"{prefix}1 pass-through/{encoding}"] = (
        case(lambda: _gather_loop(one, single, iterations)),
        1,
    )
    labelled = _tracker()
    cases[f"{prefix}1 labelled/{encoding}"] = (
        case(lambda: _gather_loop(one, labelled, iterations, label_single_replica=True)),
        1,
    )
    for n in (3, 8):
        fetch = fetch_over(n)
        tracker = _tracker()
        cases[f"{prefix}{n}/{encoding}"] = (
            case(
                lambda f=fetch, t=tracker, n=n: _gather_loop(
                    f, t, max(1, iterations // n), instance_count=n
                )
            ),
            n,
        )
    return cases


def measure(payload: str, quick: bool) -> dict[str, Any]:
    texts = build_pages(payload, 8)
    plain = [FetchedPage(t, CONTENT_TYPE) for t in texts]
    zipped = [FetchedPage(gzip.compress(t, 6), CONTENT_TYPE, "gzip") for t in texts]
    iterations = (60 if quick else 300) if payload == "p50k" else (8 if quick else 30)
    repeats = 3 if quick else 7
    loop = asyncio.new_event_loop()

    def case(make: Callable[[], Awaitable[int]]) -> Callable[[], Any]:
        return lambda: loop.run_until_complete(make())

    cases: dict[str, _Case] = {}
    for encoding, pages in (("identity", plain), ("gzip", zipped)):
        cases |= _cases(
            "", encoding, lambda n, pages=pages: _round_robin(pages[:n]), iterations, case
        )
    server = _PageServer({"identity": texts, "gzip": [page.body for page in zipped]})
    client = httpx.AsyncClient(timeout=30)
    base = server.base_url
    for encoding in ("identity", "gzip"):
        cases |= _cases(
            "http ",
            encoding,
            lambda n, encoding=encoding: _http_fetch(client, f"{base}/{n}/{encoding}"),
            iterations,
            case,
        )
    for run, _ in cases.values():  # warm-up: connections, code paths
        run()
    text = texts[0].decode()
    parser_iterations = max(2, iterations // 20)
    runs: dict[str, list[float]] = {name: [] for name in cases}
    runs["client parser (1 page)"] = []
    for _ in range(repeats):
        for name, (run, n) in cases.items():
            count = max(1, iterations // n) if n > 1 else iterations
            runs[name].append(_cpu_ms(run, count))
        runs["client parser (1 page)"].append(
            _cpu_ms(
                lambda: [
                    list(text_string_to_metric_families(text)) for _ in range(parser_iterations)
                ],
                parser_iterations,
            )
        )
    loop.run_until_complete(client.aclose())
    loop.close()
    server.close()
    medians = {name: statistics.median(values) for name, values in runs.items()}
    ratios = {}
    for name in medians:
        if "/" not in name:
            continue
        case_name, encoding = name.split("/")
        baseline = "http forward" if case_name.startswith("http") else "forward"
        ratios[name] = medians[name] / medians[f"{baseline}/{encoding}"]
    return {
        "page_bytes": len(texts[0]),
        "gzip_bytes": len(zipped[0].body),
        "iterations": iterations,
        "repeats": repeats,
        "cpu_ms_median": medians,
        "over_forward": ratios,
        "runs": runs,
    }


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"## Replica merge: CPU per scrape ({results['mode']} run, {results['started_at']})",
        "",
        "ms of CPU per scrape of the measuring thread (median of repeats). Plain rows: the added "
        "work alone (fetch() returns a prebuilt page). `http` rows: with each fetch a real "
        "keep-alive GET over loopback streamed raw with httpx, as the proxy fetches (no signing, "
        "no inbound request), so `x forward` there is the honest cost ratio per scrape.",
        "",
        "| payload | case | identity ms | x forward | gzip ms | x forward |",
        "|---|---|---|---|---|---|",
    ]
    for payload, row in results["payloads"].items():
        cpu, ratio = row["cpu_ms_median"], row["over_forward"]
        for case in (
            "forward",
            "1 pass-through",
            "1 labelled",
            "3",
            "8",
            "http forward",
            "http 1 pass-through",
            "http 1 labelled",
            "http 3",
            "http 8",
        ):
            plain, zipped = f"{case}/identity", f"{case}/gzip"
            lines.append(
                f"| {payload} ({row['page_bytes'] / 1000:.0f} kB) | {case} | {cpu[plain]:.4f} | "
                f"{ratio.get(plain, 1.0):.1f}x | {cpu[zipped]:.4f} | {ratio.get(zipped, 1.0):.1f}x |"
            )
        lines.append(
            f"| {payload} | prometheus_client parser, 1 page | "
            f"{cpu['client parser (1 page)']:.3f} | | | |"
        )
    return "\n".join(lines) + "\n"


def run(quick: bool) -> dict[str, Any]:
    return {payload: measure(payload, quick) for payload in ("p50k", "p1m")}


def main(argv: list[str] | None = None) -> int:
    return bench_main(
        argv,
        description=__doc__.splitlines()[0],
        name="replicas",
        quick_help="fewer iterations and repeats",
        run=lambda args: {"payloads": run(args.quick)},
        markdown=markdown,
    )


if __name__ == "__main__":
    sys.exit(main())
