"""The demo fleet: a few simulated AQUA deployments, each with its own name, model and behaviour.

With nothing configured the proxy serves `DEMO_DEPLOYMENTS` (default 3) of them, so every
dashboard shows what it does for a real fleet:

1. `demo-chat`: healthy and busy (the original demo engine), with 2 replicas behind its one
   endpoint (`app.demo.pool`: a load balancer picks one per request, each its own simulation with
   its own counters and start time), so the proxy's replica handling shows and is tested;
2. `demo-support-bot`: slow (a small batch, slow decoding) with patient clients, so its queue
   grows through every busy phase of the load cycle;
3. `demo-batch-jobs`: goes down now and then (see `OutageSchedule`): Prometheus' `up` drops to 0
   and AquaDeploymentDown fires;
4. and beyond: variations of the first two with deterministic load scales.

Each member carries exactly the labels a discovered deployment carries (`app.discovery.naming`
builds both), plus `demo="true"`, and appears in the inventory metric `aqua_deployment_info` as
ACTIVE. A member's target carries its `instance_count` (`replicas`), as discovery sets it for a
fixed pool, so the proxy labels a multi-replica member's series by `replica` from the first scrape.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, replace

from app.demo.profile import EngineProfile
from app.discovery.deployments import ACTIVE, DiscoveredDeployment, InferenceContainer
from app.discovery.naming import deployment_labels, slugify
from app.targets import DEMO_HOST, Target

MIN_DEMO_DEPLOYMENTS = 1
MAX_DEMO_DEPLOYMENTS = 10
DEFAULT_DEMO_DEPLOYMENTS = 3
DEFAULT_FIRST_OUTAGE_S = 600.0  # DEMO_OUTAGE_AFTER: the flaky member's first outage.
OUTAGE_EVERY_S = 900.0
OUTAGE_LENGTH_S = 240.0  # Longer than AquaDeploymentDown's `for: 2m`, so the alert fires.
DEMO_IMAGE = "dsmc://odsc-vllm-serving:0.9.1.1"  # What AQUA's vLLM deployments run.
# The OCID region keys of the regions the demo uses (as in real model deployment OCIDs).
_REGION_KEYS = {"us-ashburn-1": "iad", "eu-frankfurt-1": "fra", "uk-london-1": "lhr"}


@dataclass(frozen=True)
class OutageSchedule:
    """When a simulated deployment is unreachable: windows of `length_s` every `every_s`, the
    first starting `first_s` after the proxy started. Odd-numbered outages refuse connections,
    even-numbered ones answer 503 (the gateway's answer for an unhealthy deployment)."""

    first_s: float = DEFAULT_FIRST_OUTAGE_S
    every_s: float = OUTAGE_EVERY_S
    length_s: float = OUTAGE_LENGTH_S

    def outage_at(self, elapsed_s: float) -> int | None:
        """The number (0, 1, ...) of the outage under way `elapsed_s` after start, else None."""
        if elapsed_s < self.first_s:
            return None
        index, into = divmod(elapsed_s - self.first_s, self.every_s)
        return int(index) if into < self.length_s else None


@dataclass(frozen=True)
class DemoMember:
    """One simulated deployment of the demo fleet."""

    display_name: str
    aqua_model: str
    shape: str
    region: str
    profile: EngineProfile
    seed: int
    flaky: bool = False
    replicas: int = 1  # Instances behind the one endpoint (a fixed pool).
    served_model_name: str = "odsc-llm"  # What AQUA passes to vLLM's --served-model-name.

    @property
    def name(self) -> str:
        return slugify(self.display_name)

    @property
    def ocid(self) -> str:
        """A fake but well-formed model deployment OCID, stable for the member's name."""
        digest = base64.b32encode(hashlib.sha256(self.name.encode()).digest()).decode().lower()
        key = _REGION_KEYS.get(self.region, "iad")
        return f"ocid1.datasciencemodeldeployment.oc1.{key}.amaaaaaa{digest[:52]}"

    @property
    def url(self) -> str:
        return f"http://{DEMO_HOST}/{self.name}/metrics"

    def as_deployment(self) -> DiscoveredDeployment:
        """The member as discovery would have found it (ACTIVE, tagged as AQUA)."""
        return DiscoveredDeployment(
            ocid=self.ocid,
            display_name=self.display_name,
            url=f"https://modeldeployment.{self.region}.oci.customer-oci.com/{self.ocid}",
            lifecycle_state=ACTIVE,
            compartment_id="ocid1.compartment.oc1..demo",
            project_id="ocid1.datascienceproject.oc1..demo",
            region=self.region,
            is_aqua=True,
            aqua_model=self.aqua_model,
            shape=self.shape,
            instance_count=self.replicas,
            inference_container=InferenceContainer.VLLM,
            image=DEMO_IMAGE,
            time_created=None,
        )

    def labels(self) -> dict[str, str]:
        """The target labels: a discovered deployment's, plus `demo="true"`."""
        return {**deployment_labels(self.as_deployment(), self.name), "demo": "true"}

    def target(self) -> Target:
        return Target(
            name=self.name, url=self.url, labels=self.labels(), instance_count=self.replicas
        )


_BUSY = EngineProfile()
_SLOW = EngineProfile(
    load_scale=0.8,
    bursts=False,
    max_num_seqs=8,
    itl_scale=3.0,
    prefill_tokens_per_s=3000.0,
    patience_s=(600.0, 1800.0),
)
_FLAKY = EngineProfile(load_scale=0.5, base_rate=0.2, peak_rate=0.8)

_FIRST_THREE = (
    DemoMember(
        "Demo chat",
        "meta-llama/Llama-3.1-8B-Instruct",
        "VM.GPU.A10.2",
        "us-ashburn-1",
        _BUSY,
        seed=101,
        replicas=2,
    ),
    DemoMember(
        "Demo support bot",
        "mistralai/Mistral-7B-Instruct-v0.3",
        "VM.GPU.A10.1",
        "us-ashburn-1",
        _SLOW,
        seed=102,
    ),
    DemoMember(
        "Demo batch jobs",
        "microsoft/Phi-3-mini-4k-instruct",
        "VM.GPU.A10.1",
        "eu-frankfurt-1",
        _FLAKY,
        seed=103,
        flaky=True,
    ),
)
_MORE_MODELS = (
    ("meta-llama/Llama-3.2-3B-Instruct", "VM.GPU.A10.1", "uk-london-1"),
    ("google/gemma-2-9b-it", "VM.GPU.A10.2", "us-ashburn-1"),
    ("Qwen/Qwen2.5-7B-Instruct", "BM.GPU.A10.4", "eu-frankfurt-1"),
)


def _extra_member(number: int) -> DemoMember:
    """Member `number` (4 and up): alternately busy or slow, with a load scale set by its number."""
    model, shape, region = _MORE_MODELS[(number - 4) % len(_MORE_MODELS)]
    base = _BUSY if number % 2 == 0 else _SLOW
    scale = 0.5 + 0.15 * (number - 3)
    profile = replace(base, load_scale=round(base.load_scale * scale, 2))
    return DemoMember(f"Demo fleet {number}", model, shape, region, profile, seed=100 + number)


def demo_fleet(count: int = DEFAULT_DEMO_DEPLOYMENTS) -> tuple[DemoMember, ...]:
    """The first `count` members of the demo fleet (1 to 10)."""
    if not MIN_DEMO_DEPLOYMENTS <= count <= MAX_DEMO_DEPLOYMENTS:
        raise ValueError(f"the demo fleet has 1 to {MAX_DEMO_DEPLOYMENTS} deployments, not {count}")
    members = _FIRST_THREE[:count]
    return members + tuple(_extra_member(n) for n in range(4, count + 1))


def demo_targets(count: int = DEFAULT_DEMO_DEPLOYMENTS) -> tuple[Target, ...]:
    """The demo fleet as scrape targets."""
    return tuple(member.target() for member in demo_fleet(count))


def demo_member(name: str) -> DemoMember | None:
    """The member called `name` (the one place a simulation is chosen by target name)."""
    return next((m for m in demo_fleet(MAX_DEMO_DEPLOYMENTS) if m.name == name), None)
