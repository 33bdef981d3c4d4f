"""Built-in demo deployment: a simulated vLLM server rendered as a real vLLM `/metrics` page.

The demo lets the whole stack (proxy, Prometheus, Grafana dashboards and alert rules) run without an
OCI tenancy or a GPU. `DemoDeployment.render()` returns the Prometheus text exposition (0.0.4) of
the current vLLM V1 engine: the real metric names, types, label names (`model_name`, `engine`,
`finished_reason`, `reason`, `source`) and bucket boundaries, plus the `http_requests_total` /
`http_request_duration_seconds` families that vLLM's prometheus-fastapi-instrumentator exposes.

Behind the page runs a cheap discrete-time model of one vLLM engine (1-second ticks, per-request
bookkeeping, no per-token loops): a load that rises and falls over a 10-minute cycle plus random
bursts, an FCFS scheduler bounded by `max_num_seqs` and by a paged KV cache, chunked prefill that
slows decoding, recompute preemptions when the KV cache is full, prefix-cache hits, client aborts
and a small rate of HTTP errors. Histograms are fed from the same events as the counters, so e.g.
`e2e_request_latency_seconds_count` equals the sum of `request_success_total`.

Optional vLLM features are deliberately absent, as on a plain text-model deployment: speculative
decoding, LoRA (`lora_requests_info`), KV connectors (external prefix cache, NIXL, offload, HF3FS),
multi-modal cache, sleep mode (`engine_sleep_state`), NaN checks (`corrupted_requests`), sampled KV
block metrics, MFU estimates and realtime WebSocket metrics. Those families only exist in vLLM when
the feature is enabled, so dashboards must already cope with their absence.
"""

from __future__ import annotations

import math
import random
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

DEMO_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# --- Engine configuration: a Llama-3.1-8B on a 24 GB GPU (A10-class) with --max-model-len 8192. ---
MAX_MODEL_LEN = 8192
BLOCK_SIZE = 16
NUM_GPU_BLOCKS = 2250  # 36 000 tokens of KV cache at 128 KiB/token.
MAX_NUM_SEQS = 64
MAX_NUM_BATCHED_TOKENS = 2048  # Chunked-prefill budget per engine step.
PREFILL_TOKENS_PER_S = 9000.0
PREFILL_STEP_S = 0.02  # The engine step that completes a prefill and samples the first token.
TICK_S = 1.0
WARMUP_S = 90  # Simulated history before the first render, so every panel has data at once.
MAX_CATCH_UP_S = 120  # After a longer gap the simulation resumes instead of replaying it.
LOAD_CYCLE_S = 600.0

FINISHED_REASONS = ("stop", "length", "abort")
HANDLER_CHAT = "/v1/chat/completions"
HANDLER_COMPLETIONS = "/v1/completions"


def build_1_2_5_buckets(max_value: int) -> list[float]:
    """vLLM's `build_1_2_5_buckets`: 1, 2, 5, 10, 20, 50, ... up to `max_value` (token histograms)."""
    buckets: list[float] = []
    exponent = 0
    while True:
        for mantissa in (1, 2, 5):
            value = mantissa * 10**exponent
            if value > max_value:
                return buckets
            buckets.append(float(value))
        exponent += 1


_TOKEN_BUCKETS = build_1_2_5_buckets(MAX_MODEL_LEN)
_REQUEST_LATENCY_BUCKETS = [
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
    120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
]  # fmt: skip
_TOKEN_LATENCY_BUCKETS = [
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0,
]  # fmt: skip
_TTFT_BUCKETS = [
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
]  # fmt: skip
_ITERATION_BUCKETS = [
    1.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0,
]  # fmt: skip

# Bucket boundaries of the vLLM V1 histograms, by simulation role (the engine observes roles; each
# renderer chooses the boundaries of the vLLM version it imitates).
V1_BUCKETS: dict[str, list[float]] = {
    "ttft": _TTFT_BUCKETS,
    "itl": _TOKEN_LATENCY_BUCKETS,
    "tpot": _TOKEN_LATENCY_BUCKETS,
    "e2e": _REQUEST_LATENCY_BUCKETS,
    "queue": _REQUEST_LATENCY_BUCKETS,
    "inference": _REQUEST_LATENCY_BUCKETS,
    "prefill": _REQUEST_LATENCY_BUCKETS,
    "decode": _REQUEST_LATENCY_BUCKETS,
    "prompt_tokens": _TOKEN_BUCKETS,
    "generation_tokens": _TOKEN_BUCKETS,
    "max_num_generation_tokens": _TOKEN_BUCKETS,
    "params_max_tokens": _TOKEN_BUCKETS,
    "params_n": [1.0, 2.0, 5.0, 10.0, 20.0],
    "iteration_tokens": _ITERATION_BUCKETS,
    "prefill_kv_computed_tokens": _TOKEN_BUCKETS,
    # prometheus-fastapi-instrumentator's default "lowr" buckets for http_request_duration_seconds.
    "http_duration": [0.1, 0.5, 1.0],
}


@dataclass(frozen=True)
class FamilySpec:
    """One exposed metric family: its name as registered (counters without `_total`, which the
    exposition appends), type, label names, HELP text, and the simulation role of a histogram."""

    name: str
    type: str
    labels: tuple[str, ...]
    help: str
    role: str | None = None


_ML = ("model_name", "engine")

# The vLLM V1 families the demo exposes, in vLLM's registration order. Tests derive their
# expectations from this table and cross-check it against literal values from vLLM's source.
V1_FAMILIES: tuple[FamilySpec, ...] = (
    FamilySpec("vllm:num_requests_running", "gauge", _ML,
               "Number of requests in model execution batches."),
    FamilySpec("vllm:num_requests_waiting", "gauge", _ML,
               "Number of requests waiting to be processed."),
    FamilySpec("vllm:num_requests_waiting_by_reason", "gauge", (*_ML, "reason"),
               "Number of waiting requests by reason. Reason labels: 'capacity' = waiting for "
               "scheduling capacity; 'deferred' = deferred by transient constraints (LoRA budget, "
               "KV transfer, blocked status). Sum of all reasons equals num_requests_waiting."),
    FamilySpec("vllm:kv_cache_usage_perc", "gauge", _ML,
               "KV-cache usage. 1 means 100 percent usage."),
    FamilySpec("vllm:prefix_cache_queries", "counter", _ML,
               "Prefix cache queries, in terms of number of queried tokens."),
    FamilySpec("vllm:prefix_cache_hits", "counter", _ML,
               "Prefix cache hits, in terms of number of cached tokens."),
    FamilySpec("vllm:num_preemptions", "counter", _ML,
               "Cumulative number of preemption from the engine."),
    FamilySpec("vllm:prompt_tokens", "counter", _ML, "Number of prefill tokens processed."),
    FamilySpec("vllm:prompt_tokens_by_source", "counter", (*_ML, "source"),
               "Number of prompt tokens by source."),
    FamilySpec("vllm:prompt_tokens_cached", "counter", _ML,
               "Number of cached prompt tokens (local + external)."),
    FamilySpec("vllm:generation_tokens", "counter", _ML,
               "Number of generation tokens processed."),
    FamilySpec("vllm:request_success", "counter", (*_ML, "finished_reason"),
               "Count of successfully processed requests."),
    FamilySpec("vllm:request_prompt_tokens", "histogram", _ML,
               "Number of prefill tokens processed.", "prompt_tokens"),
    FamilySpec("vllm:request_generation_tokens", "histogram", _ML,
               "Number of generation tokens processed.", "generation_tokens"),
    FamilySpec("vllm:iteration_tokens_total", "histogram", _ML,
               "Histogram of number of tokens per engine_step.", "iteration_tokens"),
    FamilySpec("vllm:request_max_num_generation_tokens", "histogram", _ML,
               "Histogram of maximum number of requested generation tokens.",
               "max_num_generation_tokens"),
    FamilySpec("vllm:request_params_n", "histogram", _ML,
               "Histogram of the n request parameter.", "params_n"),
    FamilySpec("vllm:request_params_max_tokens", "histogram", _ML,
               "Histogram of the max_tokens request parameter.", "params_max_tokens"),
    FamilySpec("vllm:time_to_first_token_seconds", "histogram", _ML,
               "Histogram of time to first token in seconds.", "ttft"),
    FamilySpec("vllm:inter_token_latency_seconds", "histogram", _ML,
               "Histogram of inter-token latency in seconds.", "itl"),
    FamilySpec("vllm:request_time_per_output_token_seconds", "histogram", _ML,
               "Histogram of time_per_output_token_seconds per request.", "tpot"),
    FamilySpec("vllm:e2e_request_latency_seconds", "histogram", _ML,
               "Histogram of e2e request latency in seconds.", "e2e"),
    FamilySpec("vllm:request_queue_time_seconds", "histogram", _ML,
               "Histogram of time spent in WAITING phase for request.", "queue"),
    FamilySpec("vllm:request_inference_time_seconds", "histogram", _ML,
               "Histogram of time spent in RUNNING phase for request.", "inference"),
    FamilySpec("vllm:request_prefill_time_seconds", "histogram", _ML,
               "Histogram of time spent in PREFILL phase for request.", "prefill"),
    FamilySpec("vllm:request_decode_time_seconds", "histogram", _ML,
               "Histogram of time spent in DECODE phase for request.", "decode"),
    FamilySpec("vllm:request_prefill_kv_computed_tokens", "histogram", _ML,
               "Histogram of new KV tokens computed during prefill (excluding cached tokens).",
               "prefill_kv_computed_tokens"),
    FamilySpec("vllm:cache_config_info", "gauge", ("engine", "block_size", "cache_dtype",
               "enable_prefix_caching", "gpu_memory_utilization", "num_cpu_blocks",
               "num_gpu_blocks", "num_gpu_blocks_override", "prefix_caching_hash_algo",
               "sliding_window", "swap_space"),
               "Information of the LLMEngine CacheConfig"),
    FamilySpec("http_requests", "counter", ("handler", "method", "status"),
               "Total number of requests by method, status and handler."),
    FamilySpec("http_request_duration_seconds", "histogram", ("handler", "method"),
               "Latency with only few buckets by handler. Made to be only used if aggregation by "
               "handler is important.", "http_duration"),
)  # fmt: skip


class Histogram:
    """Non-cumulative bucket counts plus a sum; `add` records many equal observations at once."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(float(b) for b in bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Record one observation (`le` semantics: a value equal to a bound falls in its bucket)."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def add(self, value: float, count: int, total: float) -> None:
        """Record `count` observations placed in `value`'s bucket whose values sum to `total`."""
        if count > 0:
            self.counts[bisect_left(self.bounds, value)] += count
            self.sum += total

    def cumulative(self) -> list[tuple[str, float]]:
        """Exposition buckets: `(le, cumulative count)` pairs ending with `+Inf`."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            out.append((floatToGoString(bound), float(running)))
        out.append(("+Inf", float(running + self.counts[-1])))
        return out


class _Request:
    """One request's bookkeeping; times are simulated seconds."""

    __slots__ = (
        "abort_at", "arrival", "blocks", "cached", "cursor", "emitted", "first_token",
        "first_token_sched", "gen", "handler", "max_tokens", "n", "patience", "preempted",
        "prefill_left", "prompt", "sched", "stop_at",
    )  # fmt: skip

    def __init__(self, arrival: float, handler: str) -> None:
        self.arrival = arrival
        self.handler = handler
        self.prompt = 0
        self.cached = 0
        self.max_tokens = 0
        self.stop_at = 0  # Tokens after which the request ends (stop, length or client abort).
        self.abort_at = -1  # Token count at which the client disconnects, -1 if it never does.
        self.n = 1
        self.patience = 0.0  # Seconds the client waits in the queue before giving up.
        self.sched = -1.0  # Most recent SCHEDULED time.
        self.first_token = -1.0  # First token ever (for TTFT).
        self.first_token_sched = -1.0  # First token after the most recent SCHEDULED.
        self.gen = 0.0
        self.emitted = 0
        self.prefill_left = 0
        self.cursor = 0.0
        self.blocks = 0
        self.preempted = False


class DemoEngine:
    """Discrete-time model of one vLLM engine and its HTTP front end.

    `advance_to(t)` runs whole 1-second ticks up to simulated time `t`. State is public so that
    renderers for different vLLM versions can map it onto their metric names; histograms are keyed
    by role (see `V1_BUCKETS`) and bucketed with the boundaries given at construction.
    """

    def __init__(self, rng: random.Random, buckets: Mapping[str, Sequence[float]]) -> None:
        self.rng = rng
        self.now = 0.0
        self.hist = {role: Histogram(bounds) for role, bounds in buckets.items()}
        self.waiting: deque[_Request] = deque()
        self.running: list[_Request] = []
        self.used_blocks = 0
        self._freed_blocks = 0  # Freed by requests finishing this tick, reusable from the next.
        # Counters.
        self.prompt_tokens = 0
        self.prompt_tokens_cached = 0
        self.generation_tokens = 0
        self.prefix_queries = 0
        self.prefix_hits = 0
        self.preemptions = 0
        self.finished = dict.fromkeys(FINISHED_REASONS, 0)
        self.http: dict[tuple[str, str, str], int] = {}
        self.http_duration: dict[tuple[str, str], Histogram] = {}
        # Load model state.
        self._burst_until = -1.0
        self._burst_rate = 0.0
        self._next_burst = 60.0 + rng.uniform(0.0, 20.0)  # The demo opens mid-burst.
        self._abort_acc = rng.random()
        self._err4_acc = rng.random()
        self._err5_acc = rng.random()
        self._health_acc = rng.random()

    # --- public helpers -----------------------------------------------------------------------

    @property
    def kv_usage(self) -> float:
        """Fraction of KV-cache blocks in use."""
        return self.used_blocks / NUM_GPU_BLOCKS

    def advance_to(self, t: float) -> None:
        """Run whole ticks until simulated time reaches `t` (a fraction of a tick waits)."""
        while self.now + TICK_S <= t:
            self._tick(self.now, self.now + TICK_S)
            self.now += TICK_S

    def count_http(self, handler: str, method: str, status: str, duration: float) -> None:
        """Count one HTTP response the way prometheus-fastapi-instrumentator does."""
        key = (handler, method, status)
        self.http[key] = self.http.get(key, 0) + 1
        hist = self.http_duration.get((handler, method))
        if hist is None:
            hist = self.http_duration[(handler, method)] = Histogram(
                self.hist["http_duration"].bounds
            )
        hist.observe(duration)

    # --- load ---------------------------------------------------------------------------------

    def arrival_rate(self, t: float) -> float:
        """Requests per second at `t`: a 10-minute day/night cycle plus the current burst."""
        phase = 0.5 - 0.5 * math.cos(2.0 * math.pi * (t + 120.0) / LOAD_CYCLE_S)
        rate = 0.3 + 1.5 * phase
        return rate + self._burst_rate if t < self._burst_until else rate

    def _maybe_start_burst(self, t: float) -> None:
        """Bursts of 20-50 s add 2-4 requests/s, every 1.5-4 minutes."""
        if t >= self._next_burst and t >= self._burst_until:
            self._burst_until = t + self.rng.uniform(20.0, 50.0)
            self._burst_rate = self.rng.uniform(2.0, 4.0)
            self._next_burst = self._burst_until + self.rng.uniform(60.0, 200.0)

    def _poisson(self, lam: float) -> int:
        if lam <= 0.0:
            return 0
        if lam > 30.0:
            return max(0, round(self.rng.gauss(lam, math.sqrt(lam))))
        limit, k, p = math.exp(-lam), 0, self.rng.random()
        while p > limit:
            k += 1
            p *= self.rng.random()
        return k

    def _new_request(self, arrival: float, handler: str) -> _Request:
        rng = self.rng
        req = _Request(arrival, handler)
        prompt = int(rng.lognormvariate(6.2, 0.8))  # Median ~500 tokens.
        req.prompt = min(max(prompt, 12), MAX_MODEL_LEN - 1024)
        if rng.random() < 0.65:  # Shares a system prompt / few-shot prefix with earlier requests.
            shared = rng.choice((256, 512, 768, 1536))
            req.cached = min(shared, req.prompt - 1) // BLOCK_SIZE * BLOCK_SIZE
        req.max_tokens = rng.choices((256, 512, 1024, 2048), weights=(3, 4, 2, 1))[0]
        wanted = max(1, int(rng.lognormvariate(5.1, 0.9)))  # Median ~165 tokens.
        req.stop_at = min(wanted, req.max_tokens)
        self._abort_acc += rng.uniform(0.0, 0.07)  # ~3.5 % of requests are aborted by the client.
        if self._abort_acc >= 1.0:
            self._abort_acc -= 1.0
            req.abort_at = rng.randint(1, max(1, req.stop_at - 1))
            req.stop_at = req.abort_at
        req.n = 2 if rng.random() < 0.04 else 1
        req.patience = rng.uniform(25.0, 90.0)
        return req

    # --- one tick -----------------------------------------------------------------------------

    def _tick(self, t0: float, t1: float) -> None:
        self._maybe_start_burst(t0)
        self._arrive(t0, t1)
        self._give_up(t0)
        self._schedule(t0)
        self._step(t0, t1)
        self._health_acc += TICK_S / 10.0  # The AQUA health probe.
        if self._health_acc >= 1.0:
            self._health_acc -= 1.0
            self.count_http("/health", "GET", "2xx", 0.001 + 0.002 * self.rng.random())

    def _arrive(self, t0: float, t1: float) -> None:
        rng = self.rng
        count = self._poisson(self.arrival_rate(t0) * (t1 - t0))
        for arrival in sorted(t0 + rng.random() * (t1 - t0) for _ in range(count)):
            handler = HANDLER_CHAT if rng.random() < 0.85 else HANDLER_COMPLETIONS
            self._err4_acc += rng.uniform(0.0, 0.02)  # ~1 % rejected by validation.
            if self._err4_acc >= 1.0:
                self._err4_acc -= 1.0
                self.count_http(handler, "POST", "4xx", 0.003 + 0.01 * rng.random())
                continue
            error_rate = 0.004 if self.kv_usage < 0.97 else 0.03
            self._err5_acc += rng.uniform(0.0, error_rate)
            if self._err5_acc >= 1.0:
                self._err5_acc -= 1.0
                self.count_http(handler, "POST", "5xx", 0.02 + 0.2 * rng.random())
                continue
            self.waiting.append(self._new_request(arrival, handler))

    def _give_up(self, t0: float) -> None:
        """Clients still without a first token after their patience disconnect (oldest first)."""
        waiting = self.waiting
        while (
            waiting
            and waiting[0].first_token < 0.0
            and t0 - waiting[0].arrival > waiting[0].patience
        ):
            req = waiting.popleft()
            req.stop_at = req.emitted
            self._finish(req, "abort", max(t0, req.arrival + req.patience))

    def _schedule(self, t0: float) -> None:
        rng = self.rng
        waiting, running = self.waiting, self.running
        free = NUM_GPU_BLOCKS - self.used_blocks
        reserve = NUM_GPU_BLOCKS * 3 // 200  # Headroom for the running requests' next tokens.
        while waiting and len(running) < MAX_NUM_SEQS:
            req = waiting[0]
            context = req.prompt + req.emitted
            need = -(-context // BLOCK_SIZE)
            if need > free - reserve:
                break  # Head-of-line blocking, as vLLM's FCFS policy does.
            waiting.popleft()
            free -= need
            req.blocks = need
            if req.arrival >= t0:  # Tokenisation and the engine round trip.
                req.sched = req.arrival + 0.004 + 0.008 * rng.random()
            else:
                req.sched = t0 + 0.5 * rng.random()
            if req.preempted:  # Recompute: some of its own blocks may still be cached.
                hits = int(context * rng.uniform(0.2, 0.8)) // BLOCK_SIZE * BLOCK_SIZE
                queried = context
            else:
                hits, queried = req.cached, req.prompt
            self.prefix_queries += queried
            self.prefix_hits += hits
            req.prefill_left = max(1, context - hits)
            req.cursor = req.sched
            req.first_token_sched = -1.0
            running.append(req)
        self.used_blocks = NUM_GPU_BLOCKS - free

    def _step(self, t0: float, t1: float) -> None:
        running = self.running
        if not running:
            return
        rng = self.rng
        # Chunked prefill, FCFS: each prefill starts once scheduled and once the previous one ends.
        prefill_end = t0
        prefill_tokens = 0
        n_decode = 0
        for req in running:
            if req.prefill_left == 0:
                n_decode += 1
                continue
            start = max(req.cursor, prefill_end)
            if start >= t1:
                continue
            end = start + req.prefill_left / PREFILL_TOKENS_PER_S + PREFILL_STEP_S
            if end <= t1:
                prefill_tokens += req.prefill_left
                req.prefill_left = 0
                prefill_end = end
                req.cursor = end  # The first token comes with the step completing the prefill.
            else:
                done = int((t1 - start) * PREFILL_TOKENS_PER_S)
                prefill_tokens += done
                req.prefill_left -= done
                prefill_end = t1
        busy = min(1.0, (prefill_end - t0) / (t1 - t0))
        kv_tokens = self.used_blocks * BLOCK_SIZE
        itl = (0.027 + 0.0003 * n_decode + 1.5e-7 * kv_tokens) * (1.0 + 1.2 * busy)
        itl *= rng.uniform(0.95, 1.08)

        itl_hist = self.hist["itl"]
        decoded = 0
        survivors: list[_Request] = []
        for req in running:
            if req.prefill_left > 0:
                survivors.append(req)
                continue
            if req.first_token_sched < 0.0:  # Prefill completed during this tick: first token.
                req.first_token_sched = req.cursor
                if req.first_token < 0.0:
                    req.first_token = req.cursor
                    self.hist["ttft"].observe(req.cursor - req.arrival)
                    self.prompt_tokens += req.prompt
                    self.prompt_tokens_cached += req.cached
                    req.gen = req.emitted = 1
                    decoded += 1
                    if req.stop_at <= 1:
                        self._finish(req, "", req.cursor)
                        continue
            my_itl = itl * (0.9 + 0.2 * rng.random())
            start = max(req.cursor, t0)
            steps = (t1 - start) / my_itl
            remaining = req.stop_at - req.gen
            if steps >= remaining:
                new_tokens = req.stop_at - req.emitted
                req.gen = req.emitted = req.stop_at
                itl_hist.add(my_itl, new_tokens, my_itl * new_tokens)
                decoded += new_tokens
                self._finish(req, "", start + remaining * my_itl)
                continue
            req.gen += steps
            new_tokens = int(req.gen) - req.emitted
            req.emitted += new_tokens
            req.cursor = t1
            itl_hist.add(my_itl, new_tokens, my_itl * new_tokens)
            decoded += new_tokens
            grow = -(-(req.prompt + req.emitted) // BLOCK_SIZE) - req.blocks
            if grow > 0:
                req.blocks += grow
                self.used_blocks += grow
            survivors.append(req)
        self.running = survivors
        self.generation_tokens += decoded
        # KV cache exhausted by decode growth: preempt the newest requests (recompute mode).
        while self.used_blocks > NUM_GPU_BLOCKS and len(self.running) > 1:
            victim = self.running.pop()
            self.used_blocks -= victim.blocks
            victim.blocks = 0
            victim.preempted = True
            victim.prefill_left = 0
            self.preemptions += 1
            self.waiting.appendleft(victim)
        self.used_blocks -= self._freed_blocks
        self._freed_blocks = 0
        self._observe_iterations(prefill_tokens, decoded, itl)

    def _observe_iterations(self, prefill_tokens: int, decoded: int, itl: float) -> None:
        """Engine steps this tick: prefill-carrying steps and decode-only steps."""
        if prefill_tokens + decoded == 0:
            return
        steps = max(1, round(TICK_S / itl))
        prefill_steps = min(steps, -(-prefill_tokens // MAX_NUM_BATCHED_TOKENS))
        hist = self.hist["iteration_tokens"]
        if prefill_steps:
            total = prefill_tokens + decoded * prefill_steps / steps
            hist.add(total / prefill_steps, prefill_steps, total)
        if steps > prefill_steps:
            total = decoded * (steps - prefill_steps) / steps
            hist.add(total / (steps - prefill_steps), steps - prefill_steps, total)

    def _finish(self, req: _Request, reason: str, t: float) -> None:
        """Retire a request: free its KV blocks, count it and observe every request histogram."""
        if not reason:
            if req.stop_at == req.abort_at:
                reason = "abort"
            elif req.emitted >= req.max_tokens:
                reason = "length"
            else:
                reason = "stop"
        self._freed_blocks += req.blocks
        req.blocks = 0
        self.finished[reason] += 1
        hist = self.hist
        hist["e2e"].observe(t - req.arrival)
        if req.sched >= 0.0:
            first = req.first_token_sched if req.first_token_sched >= 0.0 else t
            hist["queue"].observe(req.sched - req.arrival)
            hist["inference"].observe(t - req.sched)
            hist["prefill"].observe(first - req.sched)
            hist["decode"].observe(t - first)
            if req.emitted > 1:
                hist["tpot"].observe((t - first) / (req.emitted - 1))
        else:  # Gave up in the queue before ever being scheduled.
            for role in ("inference", "prefill", "decode"):
                hist[role].observe(0.0)
            hist["queue"].observe(t - req.arrival)
        hist["prompt_tokens"].observe(req.prompt)
        hist["generation_tokens"].observe(req.emitted)
        hist["max_num_generation_tokens"].observe(req.emitted)
        hist["params_n"].observe(req.n)
        hist["params_max_tokens"].observe(req.max_tokens)
        hist["prefill_kv_computed_tokens"].observe(req.prompt - req.cached)
        self.count_http(req.handler, "POST", "2xx", t - req.arrival)


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
    ) -> None:
        self.model_name = model_name
        rng = random.Random(seed)  # noqa: S311 - a simulation, not cryptography
        self.engine = DemoEngine(rng, buckets)
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
    ) -> None:
        super().__init__(model_name, V1_BUCKETS, seed, clock)

    def _families(self) -> Iterator[Metric]:
        engine = self.engine
        ml = [self.model_name, "0"]
        spec = {s.name: s for s in V1_FAMILIES}
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
                          str(NUM_GPU_BLOCKS), "None", "sha256", "None", "4"]  # fmt: skip
                yield self.gauge(fam, [(values, 1.0)])
            elif fam.role is not None and name.startswith("vllm:"):
                yield self.histogram(fam, [(ml, engine.hist[fam.role])])
        yield from self.http_families(spec["http_requests"], spec["http_request_duration_seconds"])
