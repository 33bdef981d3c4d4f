"""The vLLM metric families the dashboards and alert rules read, with their legacy names.

Current names are vLLM V1's (tests/data/vllm-metrics.tsv lists them); `LEGACY_SERIES` is the one
list of names only older vLLM releases expose (renamed in 0.8-0.11, removed in 0.12-0.15).
"""

from __future__ import annotations

from grafana.generator.promql import PER_DEPLOYMENT, RATE, Family, by, counter_rate, ratio, sel

TTFT = Family("vllm:time_to_first_token_seconds")
ITL = Family("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds")
TPOT = Family("vllm:request_time_per_output_token_seconds")
E2E = Family("vllm:e2e_request_latency_seconds")
QUEUE = Family("vllm:request_queue_time_seconds")
PREFILL = Family("vllm:request_prefill_time_seconds")
DECODE = Family("vllm:request_decode_time_seconds")
INFERENCE = Family("vllm:request_inference_time_seconds")
KV_USAGE = Family("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
PREFIX_HITS = Family("vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total")
PREFIX_QUERIES = Family("vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total")
# vLLM 0.6 (V0) had no prefix-cache counters, only a hit-rate gauge: the last fallback.
LEGACY_PREFIX_HIT_RATE = "vllm:gpu_prefix_cache_hit_rate"
PROMPT_TOKENS = Family("vllm:prompt_tokens_total")
GENERATION_TOKENS = Family("vllm:generation_tokens_total")
# vLLM 0.3 had no request_success_total; every version counts finished requests in the e2e
# histogram, so that is the fallback for the request rate.
REQUEST_SUCCESS = Family("vllm:request_success_total")
RUNNING = Family("vllm:num_requests_running")
WAITING = Family("vllm:num_requests_waiting")
WAITING_BY_REASON = Family("vllm:num_requests_waiting_by_reason")
PREEMPTIONS = Family("vllm:num_preemptions_total")
PROMPT_LEN = Family("vllm:request_prompt_tokens")
GENERATION_LEN = Family("vllm:request_generation_tokens")
SPEC_ACCEPTED = Family("vllm:spec_decode_num_accepted_tokens_total")
SPEC_DRAFT_TOKENS = Family("vllm:spec_decode_num_draft_tokens_total")
SPEC_DRAFTS = Family("vllm:spec_decode_num_drafts_total")
SPEC_PER_POS = Family("vllm:spec_decode_num_accepted_tokens_per_pos_total")
LORA_INFO = "vllm:lora_requests_info"

_HISTOGRAM_SERIES = ("bucket", "sum", "count")
LEGACY_SERIES: frozenset[str] = frozenset(
    {
        str(KV_USAGE.old),
        str(PREFIX_HITS.old),
        str(PREFIX_QUERIES.old),
        LEGACY_PREFIX_HIT_RATE,
        *(f"{ITL.old}_{suffix}" for suffix in _HISTOGRAM_SERIES),
    }
)

# Expressions more than one panel shows, one series per deployment (`PER_DEPLOYMENT`).
_BY = by(PER_DEPLOYMENT)
REQUEST_RATE = (
    f"{counter_rate(REQUEST_SUCCESS)} or on (deployment) "
    f"sum {_BY} (rate({sel(E2E.new + '_count')}[{RATE}]))"
)
HTTP_ALL = sel("http_requests_total", model=False)
# prometheus-fastapi-instrumentator groups status codes ("5xx"); `5..` also matches "503".
HTTP_5XX = sel("http_requests_total", 'status=~"5.."', model=False)
HTTP_5XX_RATIO = ratio(
    f"sum {_BY} (rate({HTTP_5XX}[{RATE}])) or on (deployment) "
    f"0 * sum {_BY} (rate({HTTP_ALL}[{RATE}]))",
    f"sum {_BY} (rate({HTTP_ALL}[{RATE}]))",
)
PREFIX_HIT_RATE = (
    f"({ratio(counter_rate(PREFIX_HITS), counter_rate(PREFIX_QUERIES))}) or on (deployment) "
    f"avg {_BY} ({sel(LEGACY_PREFIX_HIT_RATE)})"
)
DEMO_UP = sel("up", 'demo="true"', model=False)
UP_BY_DEPLOYMENT = f"max {_BY} ({sel('up', model=False)})"
# This container's own programs, as Prometheus scrapes them.
STACK_JOBS = 'job=~"aqua-proxy|prometheus|grafana"'

# --- several replicas behind one deployment (the proxy labels each replica's series `replica`) ---
# prometheus_client's process collector: one start time per vLLM API server process, so a restart
# or an added replica makes a deployment's newest start time change.
START_TIME = "process_start_time_seconds"
START_TIME_SELECTOR = sel(START_TIME, model=False)


def replica_starts(
    window: str, selector: str = START_TIME_SELECTOR, labels: tuple[str, ...] = PER_DEPLOYMENT
) -> str:
    """New vLLM processes per deployment within `window` (restarts and added replicas): how often
    the deployment's newest process start time changed, sampled each minute."""
    return f"changes(max {by(labels)} ({selector})[{window}:1m])"
