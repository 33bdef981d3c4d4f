"""`/metrics` payloads of OLDER vLLM versions, for testing that dashboards and rules cope with them.

`LegacyVllm` runs the demo's engine simulation (`app.demo.engine.DemoEngine`) and renders it with
the names, labels and buckets of an older vLLM. No family carries the `engine` label (added in
0.8.3). Names current vLLM no longer exposes come from `app.vllm_catalogue.LEGACY_FAMILIES`.

version="0.6" (default): the V0 engine of vLLM 0.6.4-0.6.6 (vllm/engine/metrics.py at the time):
  gauges   num_requests_running/_waiting/_swapped, gpu_cache_usage_perc, cpu_cache_usage_perc,
           gpu_prefix_cache_hit_rate, cpu_prefix_cache_hit_rate, cache_config_info
  counters num_preemptions_total, prompt_tokens_total, generation_tokens_total, tokens_total,
           request_success_total{finished_reason}
  histos   iteration_tokens_total, time_to_first_token_seconds (to 10 s),
           time_per_output_token_seconds (to 2.5 s), e2e_request_latency_seconds,
           request_queue/inference/prefill/decode_time_seconds, time_in_queue_requests (all to
           60 s), request_prompt_tokens, request_generation_tokens,
           request_max_num_generation_tokens, request_params_n, request_params_max_tokens
  V0 had no prefix-cache query/hit counters (only the hit-rate gauges) and never counted aborted
  requests, so request_success_total has only `stop` and `length` (while the latency histograms,
  shared with the simulation, also include aborts). Families that V0 registered but only fills
  for optional features (LoRA, speculative decoding, --collect-detailed-traces) are absent, as
  they were in its multiprocess exposition.

version="0.8": the early V1 engine of vLLM 0.8.0-0.8.2, before the `engine` label and the renames:
  gpu_cache_usage_perc, gpu_prefix_cache_queries_total / gpu_prefix_cache_hits_total (in blocks),
  time_per_output_token_seconds, no swapped/CPU-cache gauges, finished_reason includes `abort`.
  Its bucket boundaries are assumed equal to the current V1 ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import Metric

from app.demo.exposition import V1_BUCKETS, SimulatedServer
from app.demo.histogram import Histogram
from app.demo.profile import BLOCK_SIZE, NUM_GPU_BLOCKS
from app.vllm_catalogue import LEGACY_BY_NAME, V1_BY_NAME, FamilySpec

_LATENCY_V0 = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0]
V0_BUCKETS: dict[str, Sequence[float]] = {
    **V1_BUCKETS,
    "ttft": [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
             7.5, 10.0],
    "itl": [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5],
    "e2e": _LATENCY_V0,
    "queue": _LATENCY_V0,
    "inference": _LATENCY_V0,
    "prefill": _LATENCY_V0,
    "decode": _LATENCY_V0,
    # --enforce-eager list, with vLLM's own 8096 typo.
    "iteration_tokens": [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8096],
}  # fmt: skip

NUM_CPU_BLOCKS = 2048  # --swap-space 4 GiB at 128 KiB per token.
_M = ("model_name",)


# A histogram family and the engine role (see app.demo.exposition) that feeds it.
Hist = tuple[FamilySpec, str]


def _hist(name: str, help_text: str, role: str) -> Hist:
    return FamilySpec(name, "histogram", _M, help_text), role


_REQUEST_HISTOGRAMS = (
    _hist("vllm:e2e_request_latency_seconds",
          "Histogram of end to end request latency in seconds.", "e2e"),
    _hist("vllm:request_queue_time_seconds",
          "Histogram of time spent in WAITING phase for request.", "queue"),
    _hist("vllm:request_inference_time_seconds",
          "Histogram of time spent in RUNNING phase for request.", "inference"),
    _hist("vllm:request_prefill_time_seconds",
          "Histogram of time spent in PREFILL phase for request.", "prefill"),
    _hist("vllm:request_decode_time_seconds",
          "Histogram of time spent in DECODE phase for request.", "decode"),
)  # fmt: skip
_TOKEN_HISTOGRAMS = (
    _hist("vllm:request_prompt_tokens", "Number of prefill tokens processed.", "prompt_tokens"),
    _hist("vllm:request_generation_tokens", "Number of generation tokens processed.",
          "generation_tokens"),
    _hist("vllm:request_max_num_generation_tokens",
          "Histogram of maximum number of requested generation tokens.",
          "max_num_generation_tokens"),
    _hist("vllm:request_params_n", "Histogram of the n request parameter.", "params_n"),
    _hist("vllm:request_params_max_tokens", "Histogram of the max_tokens request parameter.",
          "params_max_tokens"),
)  # fmt: skip
_ITERATION = _hist(
    "vllm:iteration_tokens_total",
    "Histogram of number of tokens per engine_step.",
    "iteration_tokens",
)
_TTFT = _hist(
    "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", "ttft"
)
_TPOT = (LEGACY_BY_NAME["vllm:time_per_output_token_seconds"], "itl")
_IN_QUEUE = (LEGACY_BY_NAME["vllm:time_in_queue_requests"], "queue")
_SUCCESS = FamilySpec(
    "vllm:request_success",
    "counter",
    (*_M, "finished_reason"),
    "Count of successfully processed requests.",
)
_HTTP_REQUESTS = V1_BY_NAME["http_requests"]
_HTTP_DURATION = V1_BY_NAME["http_request_duration_seconds"]
_CACHE_CONFIG = {
    "block_size": str(BLOCK_SIZE), "cache_dtype": "auto", "cpu_offload_gb": "0",
    "enable_prefix_caching": "True", "gpu_memory_utilization": "0.9",
    "num_cpu_blocks": str(NUM_CPU_BLOCKS), "num_gpu_blocks": str(NUM_GPU_BLOCKS),
    "num_gpu_blocks_override": "None", "sliding_window": "None", "swap_space_bytes": "4294967296",
}  # fmt: skip


def _gauge(name: str, help_text: str | None) -> FamilySpec:
    """A gauge of an older version; `None` help: a name current vLLM dropped (catalogue entry)."""
    return LEGACY_BY_NAME[name] if help_text is None else FamilySpec(name, "gauge", _M, help_text)


def _counter(name: str, help_text: str | None) -> FamilySpec:
    """A counter of an older version; `None` help: a name current vLLM dropped (catalogue entry)."""
    if help_text is None:
        return LEGACY_BY_NAME[name]
    return FamilySpec(name, "counter", _M, help_text)


class LegacyVllm(SimulatedServer):
    """A simulated older vLLM (see the module docstring for the families of each version)."""

    def __init__(
        self,
        model_name: str = "legacy/Mistral-7B-Instruct-v0.2",
        seed: int | None = 0,
        clock: Callable[[], float] = time.monotonic,
        *,
        version: str = "0.6",
    ) -> None:
        if version not in ("0.6", "0.8"):
            raise ValueError(f"unsupported legacy vLLM version {version!r}")
        self.version = version
        super().__init__(model_name, V0_BUCKETS if version == "0.6" else V1_BUCKETS, seed, clock)

    def _families(self) -> Iterator[Metric]:
        if self.version == "0.6":
            yield from self._v0_families()
        else:
            yield from self._early_v1_families()
        yield from self.http_families(_HTTP_REQUESTS, _HTTP_DURATION)

    def _v0_families(self) -> Iterator[Metric]:
        engine, m = self.engine, [self.model_name]
        # V0 swaps (rather than recomputes) preempted multi-sequence groups (n > 1) to CPU.
        swapped = [r for r in engine.waiting if r.preempted and r.n > 1]
        swapped_blocks = sum(-(-(r.prompt + r.emitted) // BLOCK_SIZE) for r in swapped)
        hit_rate = engine.prefix_hits / engine.prefix_queries if engine.prefix_queries else 0.0
        yield self.gauge(FamilySpec("vllm:cache_config_info", "gauge", tuple(_CACHE_CONFIG),
                                    "information of cache_config"),
                         [(list(_CACHE_CONFIG.values()), 1.0)])  # fmt: skip
        gauges = (
            ("vllm:num_requests_running", "Number of requests currently running on GPU.",
             len(engine.running)),
            ("vllm:num_requests_waiting", "Number of requests waiting to be processed.",
             len(engine.waiting) - len(swapped)),
            ("vllm:num_requests_swapped", None, len(swapped)),
            ("vllm:gpu_cache_usage_perc", None, engine.kv_usage),
            ("vllm:cpu_cache_usage_perc", None, min(1.0, swapped_blocks / NUM_CPU_BLOCKS)),
            ("vllm:cpu_prefix_cache_hit_rate", None, 0.0),
            ("vllm:gpu_prefix_cache_hit_rate", None, hit_rate),
        )  # fmt: skip
        for name, help_text, value in gauges:
            yield self.gauge(_gauge(name, help_text), [(m, value)])
        counters = (
            ("vllm:num_preemptions", "Cumulative number of preemption from the engine.",
             engine.preemptions),
            ("vllm:prompt_tokens", "Number of prefill tokens processed.", engine.prompt_tokens),
            ("vllm:generation_tokens", "Number of generation tokens processed.",
             engine.generation_tokens),
            ("vllm:tokens", None, engine.prompt_tokens + engine.generation_tokens),
        )  # fmt: skip
        for name, help_text, value in counters:
            yield self.counter(_counter(name, help_text), [(m, value)])
        for entry in (
            _ITERATION,
            _TTFT,
            _TPOT,
            *_REQUEST_HISTOGRAMS,
            _IN_QUEUE,
            *_TOKEN_HISTOGRAMS,
        ):
            yield self._histogram(entry)
        yield self.counter(_SUCCESS, [([*m, reason], engine.finished[reason])
                                      for reason in ("stop", "length")])  # fmt: skip

    def _early_v1_families(self) -> Iterator[Metric]:
        engine, m = self.engine, [self.model_name]
        gauges = (
            ("vllm:num_requests_running", "Number of requests in model execution batches.",
             len(engine.running)),
            ("vllm:num_requests_waiting", "Number of requests waiting to be processed.",
             len(engine.waiting)),
            ("vllm:gpu_cache_usage_perc", None, engine.kv_usage),
        )  # fmt: skip
        for name, help_text, value in gauges:
            yield self.gauge(_gauge(name, help_text), [(m, value)])
        counters = (
            ("vllm:gpu_prefix_cache_queries", None, engine.prefix_queries // BLOCK_SIZE),
            ("vllm:gpu_prefix_cache_hits", None, engine.prefix_hits // BLOCK_SIZE),
            ("vllm:num_preemptions", "Cumulative number of preemption from the engine.",
             engine.preemptions),
            ("vllm:prompt_tokens", "Number of prefill tokens processed.", engine.prompt_tokens),
            ("vllm:generation_tokens", "Number of generation tokens processed.",
             engine.generation_tokens),
        )  # fmt: skip
        for name, help_text, value in counters:
            yield self.counter(_counter(name, help_text), [(m, value)])
        yield self.counter(_SUCCESS, [([*m, r], n) for r, n in engine.finished.items()])
        for entry in (*_TOKEN_HISTOGRAMS[:2], _ITERATION, *_TOKEN_HISTOGRAMS[2:], _TTFT, _TPOT,
                     *_REQUEST_HISTOGRAMS):  # fmt: skip
            yield self._histogram(entry)
        config = {k: v for k, v in _CACHE_CONFIG.items() if k != "swap_space_bytes"}
        yield self.gauge(FamilySpec("vllm:cache_config_info", "gauge", tuple(config),
                                    "Information of the LLMEngine CacheConfig"),
                         [(list(config.values()), 1.0)])  # fmt: skip

    def _histogram(self, entry: Hist) -> Metric:
        spec, role = entry
        hist: Histogram = self.engine.hist[role]
        return self.histogram(spec, [([self.model_name], hist)])
