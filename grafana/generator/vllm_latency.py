"""The vLLM deployment dashboard's latency and throughput rows."""

from __future__ import annotations

from collections.abc import Sequence

from grafana.generator.layout import Layout
from grafana.generator.metrics import (
    DECODE,
    E2E,
    GENERATION_TOKENS,
    HTTP_5XX_RATIO,
    HTTP_ALL,
    INFERENCE,
    ITL,
    PREFILL,
    PROMPT_TOKENS,
    QUEUE,
    REQUEST_SUCCESS,
    TPOT,
    TTFT,
)
from grafana.generator.panels import (
    Json,
    targets,
    timeseries,
)
from grafana.generator.promql import (
    PER_DEPLOYMENT,
    RATE,
    Family,
    by,
    counter_rate,
    histogram_mean,
    quantile,
)

LATENCY_HELP = (
    "Percentiles are interpolated inside vLLM's histogram buckets, so they are estimates; the mean "
    "(sum over count) is exact. With several deployments selected the percentiles describe all "
    "their requests together; deployments on different vLLM releases may use different bucket "
    "bounds, which blurs such combined percentiles: select one deployment for exact figures."
)


def latency_panel(
    title: str,
    family: Family,
    meaning: str,
    action: str,
    *,
    steps: Sequence[tuple[float | None, str]] = ((None, "green"),),
) -> Json:
    pairs = [
        (f"p{round(q * 100)}", quantile(q, family, split=False)) for q in (0.5, 0.9, 0.95, 0.99)
    ]
    pairs.append(("mean", histogram_mean(family)))
    names = f"`{family.new}`" + (f" (older vLLM: `{family.old}`)" if family.old else "")
    description = f"{meaning}\n\n**When it is bad:** {action}\n\n{LATENCY_HELP}\n\nMetric: {names}"
    return timeseries(
        title,
        description,
        targets(*pairs),
        unit="s",
        steps=steps,
        threshold_style="dashed" if len(steps) > 1 else "off",
    )


def latency(grid: Layout) -> None:
    """Latency percentiles and means of every request phase."""
    grid.row("Latency")
    grid.add(
        8,
        8,
        latency_panel(
            "Time to first token",
            TTFT,
            "Time from a request's arrival to its first output token: queueing, prefill and the "
            "first decode step. It is what a user waits before anything appears.",
            "check *Queue time* first (capacity), then *Prefill time* (long prompts, low prefix "
            "cache hit rate). *AquaTTFTP99High* fires when p99 stays above 10 s.",
            steps=((None, "green"), (2, "orange"), (10, "red")),
        ),
    )
    grid.add(
        8,
        8,
        latency_panel(
            "Inter-token latency",
            ITL,
            "Time between two consecutive output tokens of a request, sampled for every token: the "
            "streaming speed a reader sees.",
            "large batches and prefills interleaved into decoding slow every stream; lower "
            "`--max-num-seqs` or `--max-num-batched-tokens`, or add replicas.",
            steps=((None, "green"), (0.1, "orange"), (0.25, "red")),
        ),
    )
    grid.add(
        8,
        8,
        latency_panel(
            "Time per output token (per request)",
            TPOT,
            "Each finished request's decode time divided by its output tokens: one sample per "
            "request, so a request with few tokens weighs as much as a long one (unlike "
            "inter-token latency). Only newer vLLM releases report it.",
            "same causes as inter-token latency; a gap between the two means a few long requests "
            "dominate the token-level view.",
            steps=((None, "green"), (0.1, "orange"), (0.25, "red")),
        ),
    )
    grid.add(
        8,
        8,
        latency_panel(
            "End-to-end request latency",
            E2E,
            "Time from arrival to the last token of each finished request.",
            "split it with the queue, prefill and decode panels to see where the time goes. "
            "*AquaE2EP95High* fires when p95 stays above 30 s.",
            steps=((None, "green"), (15, "orange"), (30, "red")),
        ),
    )
    grid.add(
        8,
        8,
        latency_panel(
            "Queue time",
            QUEUE,
            "Time requests spent waiting before the scheduler first ran them.",
            "queueing means demand exceeds capacity or the KV cache is full: add replicas or a "
            "larger shape, or limit clients' concurrency.",
            steps=((None, "green"), (1, "orange"), (5, "red")),
        ),
    )
    grid.add(
        8,
        8,
        latency_panel(
            "Prefill time",
            PREFILL,
            "Time spent computing the prompt (prefill phase) of each request.",
            "long prompts cost prefill time roughly in proportion to their length; a better prefix "
            "cache hit rate (shared prompt prefixes) shortens it.",
        ),
    )
    grid.add(
        8,
        8,
        latency_panel(
            "Decode time",
            DECODE,
            "Time spent generating the output tokens (decode phase) of each request.",
            "grows with output length (see *Generation length*) and with inter-token latency.",
        ),
    )
    grid.add(
        8,
        8,
        latency_panel(
            "Inference time",
            INFERENCE,
            "Time requests spent in the running state (prefill plus decode, including time lost "
            "to preemption).",
            "much larger than prefill plus decode means requests were preempted and recomputed: "
            "see *Preemptions / s* and *KV cache usage*.",
        ),
    )
    grid.add(
        8,
        8,
        timeseries(
            "Mean time per request phase",
            "Where an average request spends its time: waiting in the queue, computing its prompt "
            "(prefill) and generating its output (decode). Stacked, the total approximates the "
            "mean end-to-end latency.\n\n**When it is bad:** a growing *queue* share calls for "
            "capacity; *prefill* for shorter prompts or better prefix caching; *decode* for shorter "
            "outputs or smaller batches.\n\nMetrics: `vllm:request_{queue,prefill,decode}_time_seconds`",
            targets(
                ("queue", histogram_mean(QUEUE)),
                ("prefill", histogram_mean(PREFILL)),
                ("decode", histogram_mean(DECODE)),
            ),
            unit="s",
            stack=True,
            fill=40,
        ),
    )


def throughput(grid: Layout) -> None:
    """Tokens, finished requests and HTTP status classes per second."""
    grid.row("Throughput and requests")
    grid.add(
        6,
        8,
        timeseries(
            "Token throughput",
            "Prompt tokens processed and output tokens generated per second, per deployment. "
            "Prompt tokens include those served from the prefix cache.\n\n**When it is bad:** "
            "falling throughput with a growing queue means the engine slowed down (preemptions, "
            "long prompts); falling with an empty queue just means less traffic.\n\n"
            "Metrics: `vllm:prompt_tokens_total`, `vllm:generation_tokens_total`",
            targets(
                ("{{display_name}} · prompt", counter_rate(PROMPT_TOKENS)),
                ("{{display_name}} · generation", counter_rate(GENERATION_TOKENS)),
            ),
            unit="count:tok/s",
        ),
    )
    grid.add(
        6,
        8,
        timeseries(
            "Requests / s by finish reason",
            "Finished requests per second by why they ended: *stop* (natural end), *length* "
            "(`max_tokens` or the context window reached), *abort* (client disconnected or "
            "cancelled), *error*.\n\n**When it is bad:** a rising *length* share means truncated "
            "answers; rising *abort* often means clients time out waiting (see TTFT); any *error* "
            "deserves a look at the deployment's logs.\n\nMetric: `vllm:request_success_total`",
            targets(
                (
                    "{{display_name}} · {{finished_reason}}",
                    counter_rate(REQUEST_SUCCESS, (*PER_DEPLOYMENT, "finished_reason")),
                )
            ),
            unit="reqps",
            stack=True,
            fill=30,
        ),
    )
    grid.add(
        6,
        8,
        timeseries(
            "HTTP requests by status class",
            "Requests per second the vLLM API server answered, by status class (vLLM groups codes "
            "as 2xx, 4xx, 5xx). This is the server's own view; requests the OCI gateway rejected "
            "never reach it.\n\n**When it is bad:** 4xx are client mistakes (bad model name, "
            "context too long); 5xx are server failures.\n\nMetric: `http_requests_total`",
            targets(
                (
                    "{{display_name}} · {{status}}",
                    f"sum {by((*PER_DEPLOYMENT, 'status'))} (rate({HTTP_ALL}[{RATE}]))",
                )
            ),
            unit="reqps",
            stack=True,
            fill=30,
        ),
    )
    grid.add(
        6,
        8,
        timeseries(
            "HTTP 5xx ratio",
            "Share of API requests answered with a 5xx status, per deployment.\n\n**When it is "
            "bad:** above 5% for 5 minutes raises *AquaHigh5xxRatio*; check the deployment's logs "
            "for out-of-memory or engine crashes and the KV cache panels for overload.\n\n"
            "Metric: `http_requests_total`",
            targets(("{{display_name}}", HTTP_5XX_RATIO)),
            unit="percentunit",
            steps=((None, "green"), (0.05, "red")),
            threshold_style="dashed",
        ),
    )
