"""The demo's `/metrics` page: a simulated engine rendered as vLLM's Prometheus text exposition.

`SimulatedServer` owns the clock, the lock and the exposition; `DemoDeployment` renders the engine
as the current vLLM V1 engine does, with the families of `app.vllm_catalogue.V1_FAMILIES` (names,
types, label names, HELP text, bucket boundaries). Families of optional vLLM features are absent,
as on a plain text-model deployment, so dashboards must already cope with their absence. Like
every real vLLM (prometheus_client's process collector), the page starts with the `process_*`
families; `process_start_time_seconds` is what the proxy tells replicas apart by.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from app.demo.engine import DemoEngine
from app.demo.histogram import Histogram
from app.demo.profile import BLOCK_SIZE, MAX_CATCH_UP_S, MAX_MODEL_LEN, WARMUP_S, EngineProfile
from app.vllm_catalogue import V1_BY_NAME, V1_FAMILIES, FamilySpec

DEMO_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Which engine histogram (by role) feeds each V1 histogram family.
V1_HISTOGRAM_ROLES: dict[str, str] = {
    "vllm:request_prompt_tokens": "prompt_tokens",
    "vllm:request_generation_tokens": "generation_tokens",
    "vllm:iteration_tokens_total": "iteration_tokens",
    "vllm:request_max_num_generation_tokens": "max_num_generation_tokens",
    "vllm:request_params_n": "params_n",
    "vllm:request_params_max_tokens": "params_max_tokens",
    "vllm:time_to_first_token_seconds": "ttft",
    "vllm:inter_token_latency_seconds": "itl",
    "vllm:request_time_per_output_token_seconds": "tpot",
    "vllm:e2e_request_latency_seconds": "e2e",
    "vllm:request_queue_time_seconds": "queue",
    "vllm:request_inference_time_seconds": "inference",
    "vllm:request_prefill_time_seconds": "prefill",
    "vllm:request_decode_time_seconds": "decode",
    "vllm:request_prefill_kv_computed_tokens": "prefill_kv_computed_tokens",
    "http_request_duration_seconds": "http_duration",
}

# Bucket boundaries of the vLLM V1 histograms, by engine role.
V1_BUCKETS: dict[str, tuple[float, ...]] = {
    role: V1_BY_NAME[name].bounds(MAX_MODEL_LEN) for name, role in V1_HISTOGRAM_ROLES.items()
}


def _with_samples(
    family: GaugeMetricFamily | CounterMetricFamily,
    samples: Sequence[tuple[Sequence[str], float]],
) -> Metric:
    for labels, value in samples:
        family.add_metric(labels, value)
    return family


class SimulatedServer:
    """Clock handling, locking and exposition shared by the demo and the legacy test fixture.

    Subclasses implement `_families()`, reading `self.engine` (already advanced, lock held).
    """

    def __init__(
        self,
        model_name: str,
        buckets: Mapping[str, Sequence[float]],
        seed: int | None,
        clock: Callable[[], float],
        profile: EngineProfile | None = None,
    ) -> None:
        self.model_name = model_name
        rng = random.Random(seed)  # noqa: S311 - a simulation, not cryptography
        self.engine = DemoEngine(rng, buckets, profile)
        self._clock = clock
        self._lock = threading.Lock()
        self._origin = clock() - WARMUP_S
        self.engine.advance_to(WARMUP_S)
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self)  # type: ignore[arg-type]  # duck-typed Collector

    def render(self) -> bytes:
        """Advance the simulation to `clock()` and return the exposition text (format 0.0.4)."""
        with self._lock:
            target = self._clock() - self._origin
            lag = target - self.engine.now
            if lag > MAX_CATCH_UP_S:  # Skip a long gap rather than replaying it tick by tick.
                self._origin += lag - MAX_CATCH_UP_S
                target -= lag - MAX_CATCH_UP_S
            self.engine.advance_to(target)
            text = generate_latest(self._registry)
            self.engine.count_http("/metrics", "GET", "2xx", 0.002 + 0.002 * len(text) / 1e5)
            return text

    def collect(self) -> Iterator[Metric]:
        """prometheus_client Collector protocol: called by `generate_latest` under the lock."""
        yield from self._families()

    def _families(self) -> Iterator[Metric]:
        raise NotImplementedError

    # Helpers for subclasses.

    @staticmethod
    def gauge(spec: FamilySpec, samples: Sequence[tuple[Sequence[str], float]]) -> Metric:
        """A gauge family with the given `(label values, value)` samples."""
        return _with_samples(GaugeMetricFamily(spec.name, spec.help, labels=spec.labels), samples)

    @staticmethod
    def counter(spec: FamilySpec, samples: Sequence[tuple[Sequence[str], float]]) -> Metric:
        """A counter family (exposed with the `_total` suffix)."""
        return _with_samples(CounterMetricFamily(spec.name, spec.help, labels=spec.labels), samples)

    @staticmethod
    def histogram(spec: FamilySpec, samples: Sequence[tuple[Sequence[str], Histogram]]) -> Metric:
        """A histogram family with `_bucket`, `_sum` and `_count` samples."""
        family = HistogramMetricFamily(spec.name, spec.help, labels=spec.labels)
        for labels, hist in samples:
            family.add_metric(labels, hist.cumulative(), hist.sum)
        return family

    def http_families(self, requests: FamilySpec, duration: FamilySpec) -> Iterator[Metric]:
        """`http_requests_total` and `http_request_duration_seconds` (no model label)."""
        engine = self.engine
        yield self.counter(requests, [(list(key), value) for key, value in engine.http.items()])
        yield self.histogram(duration, [(list(k), h) for k, h in engine.http_duration.items()])


class DemoDeployment(SimulatedServer):
    """A simulated vLLM (V1 engine) deployment whose `render()` is its `/metrics` page."""

    def __init__(
        self,
        model_name: str = "demo/Llama-3.1-8B-Instruct",
        *,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        profile: EngineProfile | None = None,
        start_time: float | None = None,
    ) -> None:
        super().__init__(model_name, V1_BUCKETS, seed, clock, profile)
        # Wall-clock time the simulated server process started (it has run WARMUP_S already).
        self.start_time = round(time.time() - WARMUP_S, 2) if start_time is None else start_time

    def _families(self) -> Iterator[Metric]:
        yield from self._process_families()
        engine = self.engine
        ml = [self.model_name, "0"]
        waiting = len(engine.waiting)
        scalars: dict[str, float] = {
            "vllm:num_requests_running": len(engine.running),
            "vllm:num_requests_waiting": waiting,
            "vllm:kv_cache_usage_perc": engine.kv_usage,
            "vllm:prefix_cache_queries": engine.prefix_queries,
            "vllm:prefix_cache_hits": engine.prefix_hits,
            "vllm:num_preemptions": engine.preemptions,
            "vllm:prompt_tokens": engine.prompt_tokens,
            "vllm:prompt_tokens_cached": engine.prompt_tokens_cached,
            "vllm:generation_tokens": engine.generation_tokens,
        }
        by_source = {
            "local_compute": engine.prompt_tokens - engine.prompt_tokens_cached,
            "local_cache_hit": engine.prompt_tokens_cached,
            "external_kv_transfer": 0,
        }
        for fam in V1_FAMILIES:
            name = fam.name
            if name in scalars:
                make = self.gauge if fam.type == "gauge" else self.counter
                yield make(fam, [(ml, scalars[name])])
            elif name == "vllm:num_requests_waiting_by_reason":
                yield self.gauge(fam, [([*ml, "capacity"], waiting), ([*ml, "deferred"], 0)])
            elif name == "vllm:prompt_tokens_by_source":
                yield self.counter(fam, [([*ml, src], n) for src, n in by_source.items()])
            elif name == "vllm:request_success":
                yield self.counter(fam, [([*ml, r], n) for r, n in engine.finished.items()])
            elif name == "vllm:cache_config_info":
                values = ["0", str(BLOCK_SIZE), "auto", "True", "0.9", "0",
                          str(engine.profile.num_gpu_blocks), "None", "sha256", "None", "4"]  # fmt: skip
                yield self.gauge(fam, [(values, 1.0)])
            elif fam.type == "histogram" and name.startswith("vllm:"):
                yield self.histogram(fam, [(ml, engine.hist[V1_HISTOGRAM_ROLES[name]])])
        yield from self.http_families(
            V1_BY_NAME["http_requests"], V1_BY_NAME["http_request_duration_seconds"]
        )

    def _process_families(self) -> Iterator[Metric]:
        """The families of prometheus_client's process collector, with plausible values for a
        vLLM API server process (its memory follows the KV cache a little, its CPU time its age)."""
        engine = self.engine
        gauges = (
            ("process_virtual_memory_bytes", "Virtual memory size in bytes.", 3.2e10),
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                2.4e9 + round(1.5e8 * engine.kv_usage, -3),
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                self.start_time,
            ),
        )
        for name, help_text, number in gauges:
            yield GaugeMetricFamily(name, help_text, value=number)
        cpu_seconds = round(30.0 + 0.4 * engine.now, 2)
        yield CounterMetricFamily(
            "process_cpu_seconds", "Total user and system CPU time spent in seconds.", cpu_seconds
        )
        yield GaugeMetricFamily(
            "process_open_fds", "Number of open file descriptors.", value=40 + len(engine.running)
        )
        yield GaugeMetricFamily(
            "process_max_fds", "Maximum number of open file descriptors.", value=1048576.0
        )
