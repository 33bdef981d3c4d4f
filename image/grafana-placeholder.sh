#!/bin/sh
# Placeholder for Grafana's bin/grafana in CI image builds: Grafana cannot be fetched on the build
# machines, so the image built in CI carries this instead and its runs set GRAFANA_ENABLED=false.
case "${1:-}" in
  --version|-v|version)
    echo "grafana placeholder (CI stand-in, not Grafana): the real binary comes from the grafana/grafana image"
    exit 0
    ;;
  *)
    echo "grafana placeholder: this image was built with a stand-in for Grafana and cannot run '${1:-}'" >&2
    exit 78
    ;;
esac
