"""OCI Monitoring beside vLLM: the deployments' gateway, CPU, memory, network and GPU metrics.

A collector inside the proxy process (never in the scrape path) reads namespace
`oci_datascience_modeldeploy` through the `oci` SDK's MonitoringClient every
OCI_MONITORING_INTERVAL and serves the newest complete minute as gauges on
`/oci-monitoring/metrics`, labelled so they join vLLM's series on `deployment`.
"""
