"""A stand-in load balancer over N simulated vLLM replicas, on real loopback HTTP.

Each GET /metrics is answered by one replica picked at random (as a model deployment's load
balancer does). Every replica has its own `process_start_time_seconds`, counters that grow at a
known pace from its own start (so rates over replicas have an exact expected sum) and gauges with
known values. With `demo_pages=True` each page also carries a full simulated vLLM V1 page
(`app.demo`), so merging is exercised on real-sized, real-shaped text.

The pool can add, remove and restart replicas while it serves, and can gzip and delay answers.
"""

from __future__ import annotations

import gzip
import random
import threading
import time
from dataclasses import dataclass, field

from app.demo import DemoDeployment
from testkit.background_server import BackgroundHTTPServer, QuietHandler

MODEL = "demo/Llama-3.1-8B-Instruct"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BUCKETS = ("0.5", "1.0", "5.0", "+Inf")


@dataclass
class SimulatedReplica:
    """One replica: counters at `pace` per second since `born` (monotonic), fixed gauges."""

    start_time: float  # process_start_time_seconds (unix seconds)
    tokens_per_second: float
    running: int
    kv_usage: float
    born: float = field(default_factory=time.monotonic)
    demo: DemoDeployment | None = None

    def elapsed(self, now: float) -> float:
        return max(0.0, now - self.born)

    def render(self, now: float) -> bytes:
        elapsed = self.elapsed(now)
        tokens = self.tokens_per_second * elapsed
        requests = tokens / 50.0
        labels = f'engine="0",model_name="{MODEL}"'
        lines = [
            "# HELP python_info Python platform information",
            "# TYPE python_info gauge",
            'python_info{implementation="CPython",major="3",minor="12",patchlevel="3",'
            'version="3.12.3"} 1.0',
            "# HELP process_resident_memory_bytes Resident memory size in bytes.",
            "# TYPE process_resident_memory_bytes gauge",
            "process_resident_memory_bytes 2.1e+09",
            "# HELP process_start_time_seconds Start time of the process since unix epoch in "
            "seconds.",
            "# TYPE process_start_time_seconds gauge",
            f"process_start_time_seconds {self.start_time!r}",
            "# HELP vllm:num_requests_running Number of requests in model execution batches.",
            "# TYPE vllm:num_requests_running gauge",
            f"vllm:num_requests_running{{{labels}}} {float(self.running)!r}",
            "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.",
            "# TYPE vllm:kv_cache_usage_perc gauge",
            f"vllm:kv_cache_usage_perc{{{labels}}} {self.kv_usage!r}",
            "# HELP vllm:generation_tokens_total Number of generation tokens processed.",
            "# TYPE vllm:generation_tokens_total counter",
            f"vllm:generation_tokens_total{{{labels}}} {tokens!r}",
            "# HELP vllm:request_success_total Count of successfully processed requests.",
            "# TYPE vllm:request_success_total counter",
            f'vllm:request_success_total{{{labels},finished_reason="stop"}} {requests!r}',
            f'vllm:request_success_total{{{labels},finished_reason="length"}} 0.0',
            "# HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency in seconds.",
            "# TYPE vllm:e2e_request_latency_seconds histogram",
        ]
        for index, bound in enumerate(_BUCKETS):
            share = min(1.0, 0.4 * (index + 1))
            lines.append(
                f'vllm:e2e_request_latency_seconds_bucket{{{labels},le="{bound}"}} '
                f"{requests * share!r}"
            )
        lines += [
            f"vllm:e2e_request_latency_seconds_sum{{{labels}}} {requests * 1.2!r}",
            f"vllm:e2e_request_latency_seconds_count{{{labels}}} {requests!r}",
        ]
        text = "\n".join(lines) + "\n"
        if self.demo is not None:
            # The simulated V1 page minus the families rendered above with known values.
            text += _without_families(
                self.demo.render().decode(),
                {
                    "process_resident_memory_bytes",
                    "process_start_time_seconds",
                    "vllm:num_requests_running",
                    "vllm:kv_cache_usage_perc",
                    "vllm:generation_tokens_total",
                    "vllm:request_success_total",
                    "vllm:e2e_request_latency_seconds",
                },
            )
        return text.encode()


def _without_families(text: str, names: set[str]) -> str:
    kept: list[str] = []
    skipping = False
    for line in text.splitlines():
        if line.startswith(("# HELP ", "# TYPE ")):
            skipping = line.split()[2] in names
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + "\n"


class _Handler(QuietHandler):
    def do_GET(self) -> None:
        pool: ReplicaPool = self.owner
        if self.path != "/metrics":
            self.send_bytes(404, b"not found\n")
            return
        body, replica_index = pool.answer()
        if pool.delay_seconds:
            time.sleep(pool.delay_seconds)
        pool.finished()
        headers = {"Content-Type": CONTENT_TYPE, "X-Replica-Index": str(replica_index)}
        if pool.gzip and "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body, compresslevel=6)
            headers["Content-Encoding"] = "gzip"
        self.send_bytes(200, body, headers)


class ReplicaPool(BackgroundHTTPServer):
    """GET /metrics answered by a random replica of `replicas`."""

    def __init__(
        self,
        replicas: list[SimulatedReplica],
        *,
        seed: int = 0,
        gzip: bool = False,
        delay_seconds: float = 0.0,
    ) -> None:
        self.replicas = list(replicas)
        self.gzip = gzip
        self.delay_seconds = delay_seconds
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0  # most requests being answered at once
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        super().__init__(_Handler)

    @property
    def url(self) -> str:
        return f"{self.base_url}/metrics"

    def answer(self) -> tuple[bytes, int]:
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            index = self._random.randrange(len(self.replicas))
            replica = self.replicas[index]
        return replica.render(time.monotonic()), index

    def finished(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def add(self, replica: SimulatedReplica) -> None:
        with self._lock:
            self.replicas.append(replica)

    def remove(self, index: int) -> SimulatedReplica:
        with self._lock:
            return self.replicas.pop(index)

    def restart(self, index: int, start_time: float) -> SimulatedReplica:
        """Replace replica `index` by a fresh process: new start time, counters from zero."""
        with self._lock:
            old = self.replicas[index]
            new = SimulatedReplica(start_time, old.tokens_per_second, old.running, old.kv_usage)
            self.replicas[index] = new
            return new

    @property
    def total_tokens_per_second(self) -> float:
        return sum(r.tokens_per_second for r in self.replicas)


def make_replicas(count: int, *, demo_pages: bool = False, seed: int = 0) -> list[SimulatedReplica]:
    """`count` replicas started at distinct times, with distinct paces and gauges."""
    base = 1_795_000_000.0
    return [
        SimulatedReplica(
            start_time=base + 1234.56 * index + 0.01 * seed,
            tokens_per_second=10.0 * (index + 1),
            running=index + 2,
            kv_usage=0.1 * (index + 1),
            demo=DemoDeployment(seed=seed * 100 + index, clock=lambda: 0.0) if demo_pages else None,
        )
        for index in range(count)
    ]
