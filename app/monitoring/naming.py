"""From an OCI Monitoring metric to a Prometheus gauge: name, unit, statistic and labels.

The names come from ListMetrics (never hard-coded, so GPU metrics are found on GPU shapes), so the
unit is inferred from the name, the way the namespace names its metrics:

| OCI metric (examples)                     | statistic | exposed as                         |
|-------------------------------------------|-----------|------------------------------------|
| *Utilization, PredictBandwidth (percent)  | mean      | `<name>_ratio` (0-1: value / 100)  |
| *Latency (milliseconds)                   | mean      | `<name>_seconds` (value / 1000)    |
| *Bytes (bytes in the minute)              | sum       | `<name>_bytes_per_second` (/ 60)   |
| *Count, PredictResponse (events/minute)   | sum       | `<name>_per_second` (/ 60)         |
| anything else                             | mean      | `<name>` (as published)            |

Ratios and seconds match vLLM's own units, and per-second values compare with `rate()` of vLLM's
counters. Labels: `deployment`, `deployment_ocid`, plus `instance_id`, `status_code`,
`status_family`, `network_type` for the metrics that have those dimensions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NAMESPACE = "oci_datascience_modeldeploy"
PREFIX = "oci_datascience_modeldeploy_"
RESOURCE_DIMENSION = "resourceId"
# OCI dimension -> Prometheus label, for the dimensions kept (others are aggregated over).
LABELLED_DIMENSIONS = {
    "instanceId": "instance_id",
    "statusCode": "status_code",
    "statusFamily": "status_family",
    "networkType": "network_type",
}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NOT_NAME = re.compile(r"[^a-z0-9_]+")


@dataclass(frozen=True)
class GaugeShape:
    """How one OCI metric is queried and exposed."""

    oci_name: str
    gauge: str
    statistic: str  # MQL statistic: mean | sum
    scale: float  # exposed value = published value * scale
    unit: str  # for HELP text

    def query(self, dimensions: frozenset[str]) -> str:
        """The MQL for one call per compartment: grouped by deployment and the kept dimensions."""
        group = [RESOURCE_DIMENSION, *(d for d in LABELLED_DIMENSIONS if d in dimensions)]
        return f"{self.oci_name}[1m].groupBy({', '.join(group)}).{self.statistic}()"


def snake_case(name: str) -> str:
    """`GpuMemoryUtilization` -> `gpu_memory_utilization`."""
    return _NOT_NAME.sub("_", _CAMEL.sub("_", name).lower()).strip("_")


def shape_of(oci_name: str) -> GaugeShape:
    """The gauge for an OCI metric name (see the module docstring)."""
    snake = snake_case(oci_name)
    if "utilization" in snake or oci_name == "PredictBandwidth" or snake.endswith("_percent"):
        base = snake.removesuffix("_percent")
        return GaugeShape(oci_name, f"{PREFIX}{base}_ratio", "mean", 0.01, "ratio 0-1")
    if "latency" in snake:
        return GaugeShape(oci_name, f"{PREFIX}{snake}_seconds", "mean", 0.001, "seconds")
    if snake.endswith("bytes"):
        base = snake.removesuffix("_bytes").removesuffix("bytes").strip("_") or "bytes"
        gauge = f"{PREFIX}{base}_bytes_per_second"
        return GaugeShape(oci_name, gauge, "sum", 1 / 60, "bytes per second")
    if snake.endswith("_count") or oci_name == "PredictResponse":
        base = snake.removesuffix("_count")
        return GaugeShape(oci_name, f"{PREFIX}{base}_per_second", "sum", 1 / 60, "per second")
    return GaugeShape(oci_name, f"{PREFIX}{snake}", "mean", 1.0, "as published")
