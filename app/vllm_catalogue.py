"""The vLLM metric families aqua-metrics knows: names, types, label names, HELP text and buckets.

This is the one copy in the code. The demo renders these families, and anything else that needs
vLLM's metric names (dashboard generation, tests) imports them from here. It is plain data with no
imports beyond the standard library, so importing it costs nothing.

`V1_FAMILIES` are the families of the current vLLM V1 engine that a plain text-model deployment
exposes, in vLLM's registration order, plus the two `http_*` families of the
prometheus-fastapi-instrumentator that vLLM's API server runs. Families vLLM only registers for
optional features (speculative decoding, LoRA, KV connectors, multi-modal cache, sleep mode, NaN
checks, sampled KV block metrics, MFU estimates, realtime WebSocket) are not listed.

`LEGACY_FAMILIES` are names that older vLLM versions exposed and current ones no longer do; they
are kept apart so that nothing mistakes them for current vLLM. tests/test_demo.py checks
`V1_FAMILIES` against vLLM's own metric definitions (tests/data/vllm-metrics.tsv).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MetricType = Literal["counter", "gauge", "histogram"]


def build_1_2_5_buckets(max_value: int) -> tuple[float, ...]:
    """vLLM's `build_1_2_5_buckets`: 1, 2, 5, 10, 20, 50, ... up to `max_value` (token histograms)."""
    buckets: list[float] = []
    exponent = 0
    while True:
        for mantissa in (1, 2, 5):
            value = mantissa * 10**exponent
            if value > max_value:
                return tuple(buckets)
            buckets.append(float(value))
        exponent += 1


@dataclass(frozen=True)
class FamilySpec:
    """One metric family as registered: counters are named without `_total` (the exposition
    appends it). A histogram has fixed `buckets`, or `token_buckets` when vLLM builds its
    boundaries as a 1-2-5 series up to the deployment's max_model_len."""

    name: str
    type: MetricType
    labels: tuple[str, ...]
    help: str
    buckets: tuple[float, ...] = ()
    token_buckets: bool = False

    @property
    def exposed_name(self) -> str:
        """The sample name prefix on a `/metrics` page (`_total` for counters)."""
        return f"{self.name}_total" if self.type == "counter" else self.name

    def bounds(self, max_model_len: int) -> tuple[float, ...]:
        """Bucket boundaries on a deployment with this max_model_len (histograms only)."""
        return build_1_2_5_buckets(max_model_len) if self.token_buckets else self.buckets


MODEL_LABELS = ("model_name", "engine")

REQUEST_LATENCY_BUCKETS = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
    120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
TOKEN_LATENCY_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0,
)  # fmt: skip
TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
ITERATION_TOKEN_BUCKETS = (
    1.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0,
)  # fmt: skip
PARAMS_N_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0)
# prometheus-fastapi-instrumentator's default "lowr" buckets for http_request_duration_seconds.
HTTP_DURATION_BUCKETS = (0.1, 0.5, 1.0)

CACHE_CONFIG_LABELS = (
    "engine", "block_size", "cache_dtype", "enable_prefix_caching", "gpu_memory_utilization",
    "num_cpu_blocks", "num_gpu_blocks", "num_gpu_blocks_override", "prefix_caching_hash_algo",
    "sliding_window", "swap_space",
)  # fmt: skip


def _gauge(name: str, help_text: str, labels: tuple[str, ...] = MODEL_LABELS) -> FamilySpec:
    return FamilySpec(name, "gauge", labels, help_text)


def _counter(name: str, help_text: str, labels: tuple[str, ...] = MODEL_LABELS) -> FamilySpec:
    return FamilySpec(name, "counter", labels, help_text)


def _histogram(
    name: str, help_text: str, buckets: tuple[float, ...] = (), *, tokens: bool = False
) -> FamilySpec:
    return FamilySpec(name, "histogram", MODEL_LABELS, help_text, buckets, token_buckets=tokens)


V1_FAMILIES: tuple[FamilySpec, ...] = (
    _gauge("vllm:num_requests_running", "Number of requests in model execution batches."),
    _gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed."),
    _gauge("vllm:num_requests_waiting_by_reason",
           "Number of waiting requests by reason. Reason labels: 'capacity' = waiting for "
           "scheduling capacity; 'deferred' = deferred by transient constraints (LoRA budget, "
           "KV transfer, blocked status). Sum of all reasons equals num_requests_waiting.",
           (*MODEL_LABELS, "reason")),
    _gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage."),
    _counter("vllm:prefix_cache_queries",
             "Prefix cache queries, in terms of number of queried tokens."),
    _counter("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens."),
    _counter("vllm:num_preemptions", "Cumulative number of preemption from the engine."),
    _counter("vllm:prompt_tokens", "Number of prefill tokens processed."),
    _counter("vllm:prompt_tokens_by_source", "Number of prompt tokens by source.",
             (*MODEL_LABELS, "source")),
    _counter("vllm:prompt_tokens_cached", "Number of cached prompt tokens (local + external)."),
    _counter("vllm:generation_tokens", "Number of generation tokens processed."),
    _counter("vllm:request_success", "Count of successfully processed requests.",
             (*MODEL_LABELS, "finished_reason")),
    _histogram("vllm:request_prompt_tokens", "Number of prefill tokens processed.", tokens=True),
    _histogram("vllm:request_generation_tokens", "Number of generation tokens processed.",
               tokens=True),
    _histogram("vllm:iteration_tokens_total", "Histogram of number of tokens per engine_step.",
               ITERATION_TOKEN_BUCKETS),
    _histogram("vllm:request_max_num_generation_tokens",
               "Histogram of maximum number of requested generation tokens.", tokens=True),
    _histogram("vllm:request_params_n", "Histogram of the n request parameter.",
               PARAMS_N_BUCKETS),
    _histogram("vllm:request_params_max_tokens", "Histogram of the max_tokens request parameter.",
               tokens=True),
    _histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
               TTFT_BUCKETS),
    _histogram("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
               TOKEN_LATENCY_BUCKETS),
    _histogram("vllm:request_time_per_output_token_seconds",
               "Histogram of time_per_output_token_seconds per request.", TOKEN_LATENCY_BUCKETS),
    _histogram("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.",
               REQUEST_LATENCY_BUCKETS),
    _histogram("vllm:request_queue_time_seconds",
               "Histogram of time spent in WAITING phase for request.", REQUEST_LATENCY_BUCKETS),
    _histogram("vllm:request_inference_time_seconds",
               "Histogram of time spent in RUNNING phase for request.", REQUEST_LATENCY_BUCKETS),
    _histogram("vllm:request_prefill_time_seconds",
               "Histogram of time spent in PREFILL phase for request.", REQUEST_LATENCY_BUCKETS),
    _histogram("vllm:request_decode_time_seconds",
               "Histogram of time spent in DECODE phase for request.", REQUEST_LATENCY_BUCKETS),
    _histogram("vllm:request_prefill_kv_computed_tokens",
               "Histogram of new KV tokens computed during prefill (excluding cached tokens).",
               tokens=True),
    _gauge("vllm:cache_config_info", "Information of the LLMEngine CacheConfig",
           CACHE_CONFIG_LABELS),
    _counter("http_requests", "Total number of requests by method, status and handler.",
             ("handler", "method", "status")),
    FamilySpec("http_request_duration_seconds", "histogram", ("handler", "method"),
               "Latency with only few buckets by handler. Made to be only used if aggregation by "
               "handler is important.", HTTP_DURATION_BUCKETS),
)  # fmt: skip

V1_BY_NAME: dict[str, FamilySpec] = {family.name: family for family in V1_FAMILIES}

# Names of older vLLM versions that current vLLM no longer exposes (with the version that dropped
# them). Older versions had no `engine` label (added in 0.8.3).
_OLD = ("model_name",)
LEGACY_FAMILIES: tuple[FamilySpec, ...] = (
    # Renamed to kv_cache_usage_perc; removed in 0.12.
    FamilySpec("vllm:gpu_cache_usage_perc", "gauge", _OLD,
               "GPU KV-cache usage. 1 means 100 percent usage."),
    # Renamed to prefix_cache_queries / prefix_cache_hits (in blocks, not tokens); removed in 0.12.
    FamilySpec("vllm:gpu_prefix_cache_queries", "counter", _OLD,
               "GPU prefix cache queries, in terms of number of queried blocks."),
    FamilySpec("vllm:gpu_prefix_cache_hits", "counter", _OLD,
               "GPU prefix cache hits, in terms of number of cached blocks."),
    # Renamed to inter_token_latency_seconds; removed in 0.15. Its buckets varied by version.
    FamilySpec("vllm:time_per_output_token_seconds", "histogram", _OLD,
               "Histogram of time per output token in seconds."),
    # V0 engine only; removed in 0.9.1.
    FamilySpec("vllm:num_requests_swapped", "gauge", _OLD, "Number of requests swapped to CPU."),
    FamilySpec("vllm:cpu_cache_usage_perc", "gauge", _OLD,
               "CPU KV-cache usage. 1 means 100 percent usage."),
    FamilySpec("vllm:cpu_prefix_cache_hit_rate", "gauge", _OLD,
               "CPU prefix cache block hit rate."),
    FamilySpec("vllm:gpu_prefix_cache_hit_rate", "gauge", _OLD,
               "GPU prefix cache block hit rate."),
    FamilySpec("vllm:time_in_queue_requests", "histogram", _OLD,
               "Histogram of time the request spent in the queue in seconds.",
               REQUEST_LATENCY_BUCKETS[:15]),  # V0's request latency buckets, up to 60 s
    FamilySpec("vllm:tokens", "counter", _OLD,
               "Number of prefill plus generation tokens processed."),
)  # fmt: skip

LEGACY_BY_NAME: dict[str, FamilySpec] = {family.name: family for family in LEGACY_FAMILIES}
