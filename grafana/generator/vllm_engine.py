"""The vLLM deployment dashboard's engine rows: scheduler and caches, request shapes, data
quality, and the collapsed rows of optional features."""

from __future__ import annotations

from grafana.generator.layout import Layout
from grafana.generator.metrics import (
    GENERATION_LEN,
    KV_USAGE,
    LORA_INFO,
    PREEMPTIONS,
    PREFIX_HIT_RATE,
    PROMPT_LEN,
    RUNNING,
    SPEC_ACCEPTED,
    SPEC_DRAFT_TOKENS,
    SPEC_DRAFTS,
    SPEC_PER_POS,
    UP_BY_DEPLOYMENT,
    WAITING,
    WAITING_BY_REASON,
    replica_starts,
)
from grafana.generator.panels import (
    heatmap,
    state_timeline,
    table,
    target,
    targets,
    timeseries,
)
from grafana.generator.promql import (
    PER_DEPLOYMENT,
    RATE,
    counter_rate,
    gauge,
    histogram_mean,
    ratio,
    sel,
)


def scheduler(grid: Layout) -> None:
    """Running and waiting requests, preemptions, KV and prefix cache."""
    grid.row("Scheduler and KV cache")
    grid.add(
        8,
        8,
        timeseries(
            "Running and waiting requests",
            "Requests in the running batch and requests queued, per deployment.\n\n**When it is "
            "bad:** a waiting line that does not drain means the deployment is saturated: add "
            "instances or a larger shape, or reduce clients' concurrency.\n\n"
            "Metrics: `vllm:num_requests_running`, `vllm:num_requests_waiting`",
            targets(
                ("{{display_name}} · running", gauge(RUNNING, "sum")),
                ("{{display_name}} · waiting", gauge(WAITING, "sum")),
            ),
            unit="short",
        ),
    )
    grid.add(
        8,
        8,
        timeseries(
            "Waiting requests by reason",
            "Why queued requests wait: *capacity* (no room in the batch or the KV cache) or "
            "*deferred* (held back by a transient constraint such as the LoRA budget or a pending "
            "KV transfer). Only newer vLLM releases report it.\n\n**When it is bad:** *capacity* "
            "means more hardware or smaller requests; *deferred* points at adapter or connector "
            "limits.\n\nMetric: `vllm:num_requests_waiting_by_reason`",
            targets(
                (
                    "{{display_name}} · {{reason}}",
                    gauge(WAITING_BY_REASON, "sum", (*PER_DEPLOYMENT, "reason")),
                )
            ),
            unit="short",
            stack=True,
            fill=30,
        ),
    )
    grid.add(
        8,
        8,
        timeseries(
            "Preemptions / s",
            "Running requests evicted from the KV cache to make room, whose work is later "
            "recomputed.\n\n**When it is bad:** sustained preemption (above 1/s for 5 minutes "
            "raises *AquaPreemptions*) wastes GPU time; lower `--max-num-seqs`, shorten "
            "`--max-model-len` or give the KV cache more memory.\n\n"
            "Metric: `vllm:num_preemptions_total`",
            targets(("{{display_name}}", counter_rate(PREEMPTIONS))),
            unit="ops",
            steps=((None, "green"), (1, "red")),
            threshold_style="dashed",
        ),
    )
    grid.add(
        12,
        8,
        timeseries(
            "KV cache usage",
            "Share of the GPU KV cache in use: the average and the fullest engine of each "
            "deployment, over all its replicas. Averaged, not summed, because each engine reports "
            "a fraction of its own cache; the maximum shows the engine that will preempt first."
            "\n\n"
            "**When it is bad:** close to 100% under load is expected; staying above 90% "
            "(*AquaKVCacheNearFull*) with queueing or preemptions means the cache is too small for "
            "the traffic.\n\nMetric: `vllm:kv_cache_usage_perc` (older vLLM: "
            "`vllm:gpu_cache_usage_perc`)",
            targets(
                ("{{display_name}} · avg", gauge(KV_USAGE, "avg")),
                ("{{display_name}} · max", gauge(KV_USAGE, "max")),
            ),
            unit="percentunit",
            maximum=1,
            steps=((None, "green"), (0.9, "red")),
            threshold_style="dashed",
        ),
    )
    grid.add(
        12,
        8,
        timeseries(
            "Prefix cache hit rate",
            "Share of prompt tokens served from the prefix cache, computed from the rates of hits "
            "and queries over each interval.\n\n**When it is bad:** a drop after a restart is "
            "normal (cold cache); a lasting low rate with shared prompts means the cache is too "
            "small or requests are spread over replicas that each warm their own cache.\n\n"
            "Metrics: `vllm:prefix_cache_{hits,queries}_total` (older vLLM: "
            "`vllm:gpu_prefix_cache_{hits,queries}_total`; vLLM 0.6: the `vllm:gpu_prefix_cache_hit_rate` gauge)",
            targets(("{{display_name}}", PREFIX_HIT_RATE)),
            unit="percentunit",
            maximum=1,
        ),
    )


def shapes(grid: Layout) -> None:
    """Prompt and generation length distributions."""
    grid.row("Request shapes")
    grid.add(
        8,
        9,
        heatmap(
            "Prompt length distribution",
            "Finished requests per second by prompt length (tokens), over time. Each row is a "
            "histogram bucket, labelled by its upper bound.\n\n**When it is bad:** a shift to "
            "longer prompts explains higher TTFT and prefill time without any server fault.\n\n"
            "Metric: `vllm:request_prompt_tokens`",
            f"sum by (le) (rate({sel(PROMPT_LEN.new + '_bucket')}[{RATE}]))",
            y_unit="short",
        ),
    )
    grid.add(
        8,
        9,
        heatmap(
            "Generation length distribution",
            "Finished requests per second by output length (tokens), over time.\n\n**When it is "
            "bad:** longer outputs mean longer decode and end-to-end times; requests piling up at "
            "the top bucket usually hit `max_tokens` (see finish reason *length*).\n\n"
            "Metric: `vllm:request_generation_tokens`",
            f"sum by (le) (rate({sel(GENERATION_LEN.new + '_bucket')}[{RATE}]))",
            y_unit="short",
        ),
    )
    grid.add(
        8,
        9,
        timeseries(
            "Mean prompt and generation length",
            "Average prompt and output length of the requests finished in each interval, over the "
            "selected deployments.\n\n**When it is bad:** use it to tell a traffic change (longer "
            "prompts or answers) from a server slowdown when latency rises.\n\n"
            "Metrics: `vllm:request_prompt_tokens`, `vllm:request_generation_tokens`",
            targets(
                ("prompt", histogram_mean(PROMPT_LEN)),
                ("generation", histogram_mean(GENERATION_LEN)),
            ),
            unit="count:tok",
        ),
    )


def quality(grid: Layout) -> None:
    """Replica starts and scrape status."""
    grid.row("Data quality")
    grid.add(
        12,
        8,
        timeseries(
            "Replica starts (30 min window)",
            "New vLLM server processes (restarts and added replicas) in the preceding 30 minutes, "
            "per deployment. Each replica behind the load balancer keeps its own series (label "
            "`replica`), so a restart shows as one new replica, never as counters going "
            "backwards.\n\n**When it is bad:** above 3 raises *AquaReplicaRestartLoop*: a "
            "replica restarting in a loop (out of memory, a crashing engine); see the collapsed "
            "*Replicas* row for which one, and its logs.\n\nMetric: `process_start_time_seconds`",
            targets(("{{display_name}}", replica_starts("30m"))),
            unit="short",
            steps=((None, "green"), (3, "red")),
            threshold_style="dashed",
        ),
    )
    grid.add(
        12,
        8,
        state_timeline(
            "Scrape status",
            "Whether each deployment's metrics could be scraped, over time. Gaps in the other "
            "panels line up with **DOWN** periods here.\n\n**When it is bad:** see the *Monitoring "
            "health* dashboard for the proxy's failure kinds; *AquaDeploymentDown* fires after 2 "
            "minutes down.\n\nMetric: `up`",
            [target(UP_BY_DEPLOYMENT, "{{display_name}}")],
        ),
    )


def optional_features(grid: Layout) -> None:
    """Collapsed rows: speculative decoding and LoRA adapters."""
    grid.row("Speculative decoding (only when enabled)", collapsed=True)
    grid.add(
        8,
        8,
        timeseries(
            "Draft acceptance rate",
            "Share of the draft model's proposed tokens the target model accepted.\n\n"
            "**When it is bad:** a low rate means speculation costs more than it saves; try "
            "fewer speculative tokens or a draft model closer to the target.\n\n"
            "Metrics: `vllm:spec_decode_num_{accepted,draft}_tokens_total`",
            targets(
                (
                    "{{display_name}}",
                    ratio(counter_rate(SPEC_ACCEPTED), counter_rate(SPEC_DRAFT_TOKENS)),
                )
            ),
            unit="percentunit",
            maximum=1,
        ),
    )
    grid.add(
        8,
        8,
        timeseries(
            "Mean acceptance length",
            "Tokens produced per verification step: one from the target model plus the "
            "accepted draft tokens. 1 means speculation gives nothing.\n\n**When it is bad:** "
            "close to 1 means speculative decoding only adds overhead for this traffic.\n\n"
            "Metrics: `vllm:spec_decode_num_accepted_tokens_total`, "
            "`vllm:spec_decode_num_drafts_total`",
            targets(
                (
                    "{{display_name}}",
                    f"1 + {ratio(counter_rate(SPEC_ACCEPTED), counter_rate(SPEC_DRAFTS))}",
                )
            ),
            unit="short",
            minimum=1,
        ),
    )
    grid.add(
        8,
        8,
        timeseries(
            "Accepted tokens / s by draft position",
            "Accepted draft tokens per second at each position of the draft. Acceptance "
            "normally falls with the position.\n\n**When it is bad:** if late positions are "
            "almost never accepted, reduce the number of speculative tokens.\n\n"
            "Metric: `vllm:spec_decode_num_accepted_tokens_per_pos_total`",
            targets(
                (
                    "{{display_name}} · position {{position}}",
                    counter_rate(SPEC_PER_POS, (*PER_DEPLOYMENT, "position")),
                )
            ),
            unit="count:tok/s",
        ),
    )
    grid.row("LoRA adapters (only when enabled)", collapsed=True)
    grid.add(
        24,
        7,
        table(
            "LoRA adapters (latest)",
            "The adapters each deployment (each replica, where it has several) is running and has "
            "waiting, and its adapter budget (`max_lora`), from the most recent report.\n\n"
            "**When it is bad:** adapters that "
            "keep waiting while others run mean the budget is too small: raise `--max-loras`."
            "\n\nMetric: `vllm:lora_requests_info` (it has no model label)",
            [
                target(
                    f"1000 * topk by (deployment, replica) (1, {sel(LORA_INFO, model=False)})",
                    instant=True,
                    fmt="table",
                )
            ],
            unit="dateTimeFromNow",
            rename={
                "deployment": "Deployment",
                "display_name": "Display name",
                "replica": "Replica",
                "running_lora_adapters": "Running adapters",
                "waiting_lora_adapters": "Waiting adapters",
                "max_lora": "Max adapters",
                "Value": "Reported",
            },
            exclude=(
                "Time",
                "__name__",
                "job",
                "instance",
                "deployment_ocid",
                "region",
                "demo",
            ),
            no_value="No LoRA adapters reported",
        ),
    )
