"""Generates the provisioned Grafana dashboards and the Prometheus alert rules of aqua-metrics.

Grafana reads the committed JSON in `grafana/provisioning/dashboards/aqua/` and Prometheus the
committed `rules/aqua-metrics.rules.yml`; this package is the source of both (a test checks they
equal its output). Run it after editing:

    .venv/bin/python -m grafana.generator          # rewrite the generated files
    .venv/bin/python -m grafana.generator --check  # exit 1 if one is stale

(`grafana/build_dashboards.py` does the same.) Modules: `promql` (selectors, fallbacks, the PromQL
shapes), `metrics` (vLLM metric families, their legacy names, shared expressions), `panels` (panel
builders), `layout` (places panels and numbers their ids), `dashboard` (dashboard and variables),
one module per dashboard (`vllm_deployment` with `vllm_rows`, `monitoring_health`), `rules` (the
alert rules) and `cli` (writing and checking the files).
"""
