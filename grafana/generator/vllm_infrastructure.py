"""The "Infrastructure (OCI Monitoring)" row of "vLLM deployment": what the GPUs, the instances and
the OCI gateway saw, read by the proxy's collector from OCI Monitoring (app.monitoring).

The gauges carry the vLLM targets' `deployment` label, so they sit beside vLLM's own series and
join them on it. They are per-minute values that lag by minutes, which every description says.
"""

from __future__ import annotations

from grafana.generator.layout import Layout
from grafana.generator.metrics import E2E
from grafana.generator.panels import target, timeseries
from grafana.generator.promql import counter_rate, ratio, with_display_name

JOB_MATCHERS = 'job="oci-monitoring", deployment=~"$deployment"'
PREFIX = "oci_datascience_modeldeploy_"
SOURCE = (
    "\n\nFrom OCI Monitoring (namespace `oci_datascience_modeldeploy`), read by the proxy every "
    "OCI_MONITORING_INTERVAL: per-minute values that lag real time by about three minutes (the "
    "newest complete minute). Empty when OCI_MONITORING is off or the IAM policy is missing: see "
    "*Monitoring health*."
)


def oci(metric: str, extra: str = "") -> str:
    """A selector of an OCI Monitoring gauge, filtered by the dashboard's deployment variable."""
    return f"{PREFIX}{metric}{{{JOB_MATCHERS}{', ' + extra if extra else ''}}}"


def oci_regex(pattern: str, exclude: str = "") -> str:
    """Gauges whose names match `pattern` (GPU names come from ListMetrics, not from us)."""
    extra = f', __name__!~"{exclude}"' if exclude else ""
    return f'{{__name__=~"{PREFIX}{pattern}", {JOB_MATCHERS}{extra}}}'


def infrastructure(grid: Layout) -> None:
    grid.row("Infrastructure (OCI Monitoring)", collapsed=True)
    grid.add(
        12,
        8,
        timeseries(
            "GPU utilization per instance",
            "Share of time the GPUs of each instance were busy. Low while requests wait means the "
            "engine, not the GPU, is the bottleneck; high with a growing queue means too little "
            "GPU. Only GPU shapes publish it." + SOURCE,
            [
                target(
                    with_display_name(
                        f"max by (deployment, instance_id) ({oci_regex('gpu_.*utilization_ratio', '.*memory.*')})"
                    ),
                    "{{display_name}} · {{instance_id}}",
                )
            ],
            unit="percentunit",
            maximum=1,
        ),
    )
    grid.add(
        12,
        8,
        timeseries(
            "GPU memory per instance",
            "Share of GPU memory in use on each instance. vLLM reserves most of it for the KV "
            "cache at start (`--gpu-memory-utilization`), so a high, flat line is normal; compare "
            "*KV cache usage* for how full the cache is." + SOURCE,
            [
                target(
                    with_display_name(
                        f"max by (deployment, instance_id) ({oci_regex('gpu_.*memory.*_ratio')})"
                    ),
                    "{{display_name}} · {{instance_id}}",
                )
            ],
            unit="percentunit",
            maximum=1,
        ),
    )
    grid.add(
        8,
        8,
        timeseries(
            "CPU utilization per instance",
            "CPU busy share of each instance. High CPU with idle GPUs points at tokenization or "
            "request handling in the server process." + SOURCE,
            [
                target(
                    with_display_name(
                        f"max by (deployment, instance_id) ({oci('cpu_utilization_ratio')})"
                    ),
                    "{{display_name}} · {{instance_id}}",
                )
            ],
            unit="percentunit",
            maximum=1,
        ),
    )
    grid.add(
        8,
        8,
        timeseries(
            "Memory utilization per instance",
            "Host memory in use on each instance (not GPU memory). Near full risks the container "
            "being killed." + SOURCE,
            [
                target(
                    with_display_name(
                        f"max by (deployment, instance_id) ({oci('memory_utilization_ratio')})"
                    ),
                    "{{display_name}} · {{instance_id}}",
                )
            ],
            unit="percentunit",
            maximum=1,
        ),
    )
    grid.add(
        8,
        8,
        timeseries(
            "Network per instance",
            "Bytes per second into (BytesIn) and out of (BytesOut) each instance of the "
            "deployment, beside its CPU and memory. One instance far above the others means the "
            "load balancer sends it more than its share." + SOURCE,
            [
                target(
                    with_display_name(
                        "max by (deployment, instance_id, network_type) "
                        f"({oci('network_bytes_per_second')})"
                    ),
                    "{{display_name}} · {{instance_id}} {{network_type}}",
                )
            ],
            unit="Bps",
        ),
    )
    grid.add(
        8,
        8,
        timeseries(
            "Gateway responses by status",
            "Responses per second the OCI gateway (load balancer) sent, by status family, "
            "including requests refused before they reached vLLM (401/404 authorization, 429 "
            "throttling) which vLLM's own metrics never see. 4XX/5XX here while vLLM shows no "
            "errors raises *AquaGatewayErrorsOnly*." + SOURCE,
            [
                target(
                    with_display_name(
                        f"sum by (deployment, status_family) ({oci('predict_response_per_second')})"
                    ),
                    "{{display_name}} · {{status_family}}",
                )
            ],
            unit="reqps",
            stack=True,
        ),
    )
    grid.add(
        8,
        8,
        timeseries(
            "Gateway vs vLLM latency (mean)",
            "Mean request latency as the OCI gateway measured it (PredictLatency) beside vLLM's "
            "own mean end-to-end latency. The gap is time spent outside the engine: the load "
            "balancer, the network and the server's HTTP layer. vLLM's mean is over the rate "
            "window; the gateway's over one minute, minutes ago." + SOURCE,
            [
                target(
                    with_display_name(f"max by (deployment) ({oci('predict_latency_seconds')})"),
                    "{{display_name}} · gateway",
                ),
                target(
                    ratio(counter_rate(E2E, suffix="_sum"), counter_rate(E2E, suffix="_count")),
                    "{{display_name}} · vLLM",
                    "B",
                ),
            ],
            unit="s",
        ),
    )
    grid.add(
        8,
        8,
        timeseries(
            "Gateway bandwidth used",
            "Share of the deployment's provisioned load-balancer bandwidth in use "
            "(PredictBandwidth). Near 100% the gateway refuses requests with 429: raise the "
            "deployment's bandwidth." + SOURCE,
            [
                target(
                    with_display_name(f"max by (deployment) ({oci('predict_bandwidth_ratio')})"),
                    "{{display_name}}",
                )
            ],
            unit="percentunit",
            steps=((None, "green"), (0.8, "orange"), (0.95, "red")),
            threshold_style="line",
        ),
    )
