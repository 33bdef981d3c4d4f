"""Built-in demo deployments: simulated vLLM servers, reached through an httpx transport.

The demo lets the whole stack (proxy, Prometheus, Grafana dashboards and alert rules) run without
an OCI tenancy or a GPU. Modules:

- `app.demo.engine`: the simulation, a discrete-time model of one vLLM engine (no metric names);
- `app.demo.profile`: the simulated engine's constants and `EngineProfile` (load and capacity);
- `app.demo.histogram`: the cheap histogram the simulation feeds;
- `app.demo.exposition`: renders an engine as a vLLM `/metrics` page, using the families of
  `app.vllm_catalogue` (the one copy of vLLM's metric names, types, labels and buckets);
- `app.demo.transport`: `DemoTransport`, which answers a demo target's URL with that page;
- `app.demo.pool`: several simulated replicas behind one URL, picked at random per request;
- `app.demo.fleet`: the demo fleet (`DEMO_DEPLOYMENTS` members, each with its own name, model,
  load, capacity and outages);
- `app.demo.inventory`: the demo fleet in the inventory metric `aqua_deployment_info`.
"""

from app.demo.exposition import DEMO_CONTENT_TYPE, DemoDeployment
from app.demo.fleet import OutageSchedule, demo_targets
from app.demo.transport import DemoTransport, demo_transport

__all__ = [
    "DEMO_CONTENT_TYPE",
    "DemoDeployment",
    "DemoTransport",
    "OutageSchedule",
    "demo_targets",
    "demo_transport",
]
