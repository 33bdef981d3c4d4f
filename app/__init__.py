"""aqua-metrics: monitor vLLM model deployments on OCI Data Science AI Quick Actions."""

__version__ = "0.1.0"
