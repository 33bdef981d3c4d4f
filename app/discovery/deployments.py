"""A model deployment as discovery sees it: plain, frozen data mapped from the SDK's summary.

The mapping is pure (no I/O) and accepts either the SDK's `ModelDeploymentSummary` or a mapping of
the same snake_case fields (what `oci.util.to_dict` gives), so it is tested without a network.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

AQUA_TAG_KEYS = ("OCI_AQUA", "oci_aqua")
AQUA_MODEL_TAG = "aqua_model_name"
ACTIVE = "ACTIVE"
# Deployments on their way out: they lose a contested name to a live one (see `naming`).
GONE_STATES = frozenset({"DELETING", "DELETED"})


class InferenceContainer(StrEnum):
    """The serving container family, read from the deployment's image."""

    VLLM = "vllm"
    TGI = "tgi"
    LLAMA_CPP = "llama_cpp"
    OTHER = "other"


# Matched against the image's repository name (no registry, no tag), AQUA's families first
# (`odsc-vllm-serving[-v1|-llama4|-openai]`, `odsc-tgi-serving`, `odsc-text-generation-inference`,
# `odsc-llama-cpp-serving`, `odsc-llama-cpp-python-aio-…`), then the upstream projects' own
# images, which bring your own container deployments use (`vllm/vllm-openai`, TGI, llama.cpp).
_CONTAINER_PATTERNS = (
    (InferenceContainer.VLLM, re.compile(r"vllm")),
    (InferenceContainer.TGI, re.compile(r"tgi-serving|text-generation-inference")),
    (InferenceContainer.LLAMA_CPP, re.compile(r"llama[-_.]?cpp")),
)


@dataclass(frozen=True, slots=True)
class DiscoveredDeployment:
    """One deployment found by a listing (any lifecycle state).

    `url` is the `model_deployment_url` exactly as the API gave it (not yet validated);
    `instance_count` is the fixed pool size, or the autoscaling maximum (else initial) count,
    None when the configuration does not say; `autoscaled` tells the two apart (an autoscaled
    pool may run fewer instances than its maximum at any moment).
    """

    ocid: str
    display_name: str
    url: str
    lifecycle_state: str
    compartment_id: str
    project_id: str
    region: str
    is_aqua: bool
    aqua_model: str
    shape: str
    instance_count: int | None
    inference_container: InferenceContainer
    image: str
    time_created: datetime | None
    autoscaled: bool = False

    @property
    def is_active(self) -> bool:
        return self.lifecycle_state == ACTIVE

    @property
    def known_replicas(self) -> int | None:
        """How many replicas serve the URL right now, where the configuration says so: the fixed
        pool size; None for an autoscaled pool (the proxy learns its current size instead)."""
        return None if self.autoscaled else self.instance_count


def _get(source: Any, name: str) -> Any:
    """Field `name` of an SDK model or of a snake_case mapping (None when absent)."""
    if source is None:
        return None
    if isinstance(source, Mapping):
        return source.get(name)
    return getattr(source, name, None)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def is_aqua_tags(freeform_tags: Mapping[str, str] | None) -> bool:
    """AQUA's own test (ADS): the tag KEY `OCI_AQUA` or `oci_aqua` is present, whatever its value."""
    return any(key in (freeform_tags or {}) for key in AQUA_TAG_KEYS)


def classify_image(image: str | None) -> InferenceContainer:
    """`vllm`, `tgi`, `llama_cpp` or `other` from an image such as `dsmc://odsc-vllm-serving:0.9`."""
    if not image:
        return InferenceContainer.OTHER
    without_digest = image.split("@", 1)[0]
    last = without_digest.rsplit("/", 1)[-1]
    repository = last.split(":", 1)[0].lower()
    for container, pattern in _CONTAINER_PATTERNS:
        if pattern.search(repository):
            return container
    return InferenceContainer.OTHER


def _instance_count(scaling_policy: Any) -> int | None:
    policy_type = _get(scaling_policy, "policy_type")
    if policy_type == "FIXED_SIZE":
        count = _get(scaling_policy, "instance_count")
        return count if isinstance(count, int) else None
    if policy_type == "AUTOSCALING":
        for details in _get(scaling_policy, "auto_scaling_policies") or ():
            for field_name in ("maximum_instance_count", "initial_instance_count"):
                count = _get(details, field_name)
                if isinstance(count, int):
                    return count
    return None


def _infrastructure(config: Any) -> tuple[Any, Any]:
    """(instance_configuration, scaling_policy) wherever this deployment type keeps them:
    `model_configuration_details` (SINGLE_MODEL) or `infrastructure_configuration_details`
    (SINGLE_MODEL_FLEX, MODEL_GROUP)."""
    for holder_name in ("model_configuration_details", "infrastructure_configuration_details"):
        holder = _get(config, holder_name)
        instance = _get(holder, "instance_configuration")
        if instance is not None:
            return instance, _get(holder, "scaling_policy")
    return None, None


def from_summary(summary: Any, *, region: str) -> DiscoveredDeployment:
    """Map one `ModelDeploymentSummary` (or its snake_case dict) listed in `region`."""
    tags = _get(summary, "freeform_tags") or {}
    config = _get(summary, "model_deployment_configuration_details")
    instance, scaling = _infrastructure(config)
    image = _text(_get(_get(config, "environment_configuration_details"), "image"))
    created = _get(summary, "time_created")
    return DiscoveredDeployment(
        ocid=_text(_get(summary, "id")),
        display_name=_text(_get(summary, "display_name")),
        url=_text(_get(summary, "model_deployment_url")),
        lifecycle_state=_text(_get(summary, "lifecycle_state")).upper() or "UNKNOWN",
        compartment_id=_text(_get(summary, "compartment_id")),
        project_id=_text(_get(summary, "project_id")),
        region=region,
        is_aqua=is_aqua_tags(tags),
        aqua_model=_text(tags.get(AQUA_MODEL_TAG)),
        shape=_text(_get(instance, "instance_shape_name")),
        instance_count=_instance_count(scaling),
        inference_container=classify_image(image),
        image=image,
        time_created=created if isinstance(created, datetime) else None,
        autoscaled=_get(scaling, "policy_type") == "AUTOSCALING",
    )
