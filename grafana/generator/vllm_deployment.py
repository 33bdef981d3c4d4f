"""The "vLLM deployment" dashboard: the demo banner and the tiles here, the rows in `vllm_latency`
and `vllm_engine`."""

from __future__ import annotations

from grafana.generator import vllm_engine, vllm_infrastructure, vllm_latency, vllm_replicas
from grafana.generator.dashboard import (
    DATASOURCE_VARIABLE,
    DEPLOYMENT_VARIABLE,
    MODEL_VARIABLE,
    dashboard,
    dashboard_link,
)
from grafana.generator.layout import Layout
from grafana.generator.metrics import (
    DEMO_UP,
    E2E,
    GENERATION_TOKENS,
    HTTP_5XX_RATIO,
    ITL,
    KV_USAGE,
    PREFIX_HIT_RATE,
    REQUEST_RATE,
    RUNNING,
    TTFT,
    UP_BY_DEPLOYMENT,
    WAITING,
    replica_starts,
)
from grafana.generator.panels import UP_MAPPINGS, Json, stat, table, target
from grafana.generator.promql import counter_rate, gauge, quantile, sel


def banner(grid: Layout) -> None:
    """Says DEMO DATA while the built-in simulator is among the selected deployments."""
    demo_mappings = [
        {
            "type": "value",
            "options": {
                "0": {
                    "color": "transparent",
                    "index": 0,
                    "text": "Live data: no simulated deployment is selected",
                }
            },
        },
        {
            "type": "range",
            "options": {
                "from": 1,
                "to": None,
                "result": {
                    "color": "orange",
                    "index": 1,
                    "text": (
                        "DEMO DATA: the built-in simulated deployment is selected; its numbers are "
                        "generated, not measured"
                    ),
                },
            },
        },
    ]
    grid.add(
        24,
        2,
        stat(
            "Data origin",
            "Shows **DEMO DATA** while the selected deployments include the built-in simulator "
            '(target label `demo="true"`), which aqua-metrics serves when no real deployment is '
            "configured, so that nobody mistakes its generated numbers for a real service. To monitor "
            "real model deployments, configure them (see the README) and pick them in *Deployment*.",
            [target(f"count({DEMO_UP}) or vector(0)")],
            unit="none",
            steps=((None, "transparent"), (1, "orange")),
            mappings=demo_mappings,
            color_mode="background",
            graph=False,
            no_value="Live data",
        ),
    )


# What the selected deployments are: the target labels discovery (or the demo) gives them.
HEADER_LABELS = (
    ("display_name", "Display name"),
    ("deployment", "Deployment"),
    ("aqua_model", "AQUA model"),
    ("inference_container", "Container"),
    ("shape", "Shape"),
    ("region", "Region"),
)


def header(grid: Layout) -> None:
    """The selected deployments' display name, AQUA model, container and shape."""
    labels = ", ".join(name for name, _ in HEADER_LABELS)
    panel = table(
        "Selected deployments",
        "Who the selected deployments are, as discovery reports them (display name, the AQUA "
        "model from the `aqua_model_name` tag, the inference container and the instance shape). "
        "A deployment configured by URL only has its name. *AQUA fleet* (link at the top) shows "
        "the whole fleet.\n\nMetric: `up` (its target labels)",
        [
            target(
                f"max by ({labels}) ({sel('up', model=False)})", "__auto", instant=True, fmt="table"
            )
        ],
        unit="none",
        exclude=("Time", "Value"),
        rename=dict(HEADER_LABELS),
        no_value="No deployment selected",
    )
    panel["transformations"][1]["options"]["indexByName"] = {
        name: index for index, (name, _) in enumerate(HEADER_LABELS)
    }
    grid.add(24, 4, panel)


def tiles(grid: Layout) -> None:
    """Two lines of stat tiles: traffic, errors, latency, saturation, data quality."""
    grid.add(
        4,
        4,
        stat(
            "Scrape up",
            "Whether Prometheus could scrape each deployment's metrics through the proxy at the last "
            "attempt. **DOWN** means every other panel is going stale for that deployment. Open the "
            "*Monitoring health* dashboard: the proxy's failure kinds tell a refused signature "
            "(IAM policy or dynamic group), a timeout or an error status apart; "
            "404 NotAuthorizedOrNotFound means a wrong OCID or missing permission.",
            [target(UP_BY_DEPLOYMENT, "{{display_name}}")],
            unit="none",
            steps=((None, "red"), (1, "green")),
            mappings=UP_MAPPINGS,
            color_mode="background",
            graph=False,
            no_value="No target",
        ),
    )
    grid.add(
        4,
        4,
        stat(
            "Requests / s",
            "Requests finished per second (any finish reason), per deployment, summed over its "
            "replicas. A sudden drop to "
            "zero while clients are sending means requests are not reaching the engine.\n\n"
            "Metric: `vllm:request_success_total` (vLLM 0.3: `vllm:e2e_request_latency_seconds_count`)",
            [target(REQUEST_RATE, "{{display_name}}")],
            unit="reqps",
        ),
    )
    grid.add(
        4,
        4,
        stat(
            "HTTP 5xx ratio",
            "Share of API requests the vLLM server answered with a 5xx status. Above 5% for 5 "
            "minutes raises *AquaHigh5xxRatio*: look for engine errors (out of memory, CUDA errors, "
            "a dead engine) in the deployment's logs. Errors after a stream has started are not "
            "counted here (see *Requests / s by finish reason*).\n\nMetric: `http_requests_total`",
            [target(HTTP_5XX_RATIO, "{{display_name}}")],
            unit="percentunit",
            steps=((None, "green"), (0.01, "orange"), (0.05, "red")),
        ),
    )
    grid.add(
        4,
        4,
        stat(
            "TTFT p95",
            "95th percentile time to first token: queueing, prefill and the first decode step. "
            "High with a long queue means too little capacity; high with short queues points at "
            "long prompts (see *Request shapes*).\n\nMetric: `vllm:time_to_first_token_seconds`",
            [target(quantile(0.95, TTFT, split=True), "{{display_name}}")],
            unit="s",
            steps=((None, "green"), (2, "orange"), (10, "red")),
        ),
    )
    grid.add(
        4,
        4,
        stat(
            "Inter-token latency p95",
            "95th percentile time between two streamed tokens, what a reader of a streamed answer "
            "feels as speed. It rises with batch size and with prefills of other requests "
            "interleaved into decoding.\n\nMetric: `vllm:inter_token_latency_seconds` (older vLLM: "
            "`vllm:time_per_output_token_seconds`)",
            [target(quantile(0.95, ITL, split=True), "{{display_name}}")],
            unit="s",
            steps=((None, "green"), (0.1, "orange"), (0.25, "red")),
        ),
    )
    grid.add(
        4,
        4,
        stat(
            "End-to-end p95",
            "95th percentile request latency from arrival to the last token. Above 30 s for 10 "
            "minutes raises *AquaE2EP95High*. Long outputs make long requests: compare with the "
            "generation length distribution before blaming the server.\n\n"
            "Metric: `vllm:e2e_request_latency_seconds`",
            [target(quantile(0.95, E2E, split=True), "{{display_name}}")],
            unit="s",
            steps=((None, "green"), (15, "orange"), (30, "red")),
        ),
    )
    grid.add(
        4,
        4,
        stat(
            "KV cache usage",
            "Share of the GPU KV cache in use, averaged over the deployment's engines and replicas "
            "(summing per-engine fractions would exceed 100%). Near 100% new requests wait and running ones "
            "get preempted; above 90% for 10 minutes raises *AquaKVCacheNearFull*.\n\n"
            "Metric: `vllm:kv_cache_usage_perc` (older vLLM: `vllm:gpu_cache_usage_perc`)",
            [target(gauge(KV_USAGE, "avg"), "{{display_name}}")],
            unit="percentunit",
            steps=((None, "green"), (0.8, "orange"), (0.9, "red")),
            no_value="No data",
        ),
    )
    grid.add(
        4,
        4,
        stat(
            "Running requests",
            "Requests in the running batches now, summed over the deployment's replicas. Flat at the configured `--max-num-seqs` "
            "means the batch is full and further requests queue.\n\n"
            "Metric: `vllm:num_requests_running`",
            [target(gauge(RUNNING, "sum"), "{{display_name}}")],
            unit="short",
            no_value="No data",
        ),
    )
    grid.add(
        4,
        4,
        stat(
            "Waiting requests",
            "Requests queued for the engine now. A queue that keeps growing means demand exceeds "
            "capacity: add replicas or a larger shape; above 50 for 5 minutes raises "
            "*AquaWaitingQueueBacklog*.\n\nMetric: `vllm:num_requests_waiting`",
            [target(gauge(WAITING, "sum"), "{{display_name}}")],
            unit="short",
            steps=((None, "green"), (10, "orange"), (50, "red")),
            no_value="No data",
        ),
    )
    grid.add(
        4,
        4,
        stat(
            "Prefix cache hit rate",
            "Share of prompt tokens found in the prefix cache, from the rates of hits and queries "
            "(not from the raw counters, which would average over the server's whole life). Low "
            "values are normal for unrelated prompts; a shared system prompt should give a high "
            "rate.\n\nMetrics: `vllm:prefix_cache_{hits,queries}_total` (older vLLM: "
            "`vllm:gpu_prefix_cache_{hits,queries}_total`; vLLM 0.6: the `vllm:gpu_prefix_cache_hit_rate` gauge)",
            [target(PREFIX_HIT_RATE, "{{display_name}}")],
            unit="percentunit",
        ),
    )
    grid.add(
        4,
        4,
        stat(
            "Generation tokens / s",
            "Output tokens generated per second. With requests running, zero for 5 minutes "
            "raises *AquaGenerationStalled* (a hung engine).\n\n"
            "Metric: `vllm:generation_tokens_total`",
            [target(counter_rate(GENERATION_TOKENS), "{{display_name}}")],
            unit="count:tok/s",
        ),
    )
    grid.add(
        4,
        4,
        stat(
            "Replica starts (time range)",
            "New vLLM server processes in the selected time range: restarts and added replicas. "
            "Zero is the normal case; one per deployment or scaling step is expected. Each "
            "replica behind the load balancer keeps its own series (label `replica`), so a "
            "restart never makes counters go backwards or rates spike. Several in a short time "
            "mean a replica restarts in a loop (*AquaReplicaRestartLoop*); the collapsed "
            "*Replicas* row shows which.\n\nMetric: `process_start_time_seconds`",
            [target(replica_starts("$__range"), "{{display_name}}", instant=True)],
            unit="short",
            steps=((None, "green"), (1, "orange"), (4, "red")),
            graph=False,
            no_value="No data",
            decimals=0,
        ),
    )


def build() -> Json:
    grid = Layout()
    banner(grid)
    header(grid)
    tiles(grid)
    vllm_latency.latency(grid)
    vllm_latency.throughput(grid)
    vllm_engine.scheduler(grid)
    vllm_engine.shapes(grid)
    vllm_engine.quality(grid)
    vllm_engine.optional_features(grid)
    vllm_infrastructure.infrastructure(grid)
    vllm_replicas.replicas(grid)
    return dashboard(
        "aqua-vllm",
        "vLLM deployment",
        "Traffic, latency, saturation and data quality of vLLM model deployments on OCI Data "
        "Science AI Quick Actions, scraped through the aqua-metrics signing proxy. Works with "
        "current and older vLLM metric names.",
        grid.panels,
        [DATASOURCE_VARIABLE, DEPLOYMENT_VARIABLE, MODEL_VARIABLE],
        ("aqua", "vllm"),
        [
            dashboard_link(
                "AQUA fleet",
                "aqua-fleet",
                "aqua-fleet",
                "Every deployment at a glance: back to the fleet",
            )
        ],
    )
