"""The all-in-one stack: runtime files in DATA_DIR, supervisord, Prometheus, Alertmanager, Grafana."""
