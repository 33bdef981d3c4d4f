"""Mapping the SDK's ModelDeploymentSummary to DiscoveredDeployment (pure, no network)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from oci.data_science.models import (
    AutoScalingPolicy,
    FixedSizeScalingPolicy,
    InstanceConfiguration,
    InstancePoolInfrastructureConfigurationDetails,
    ModelConfigurationDetails,
    ModelDeploymentSummary,
    OcirModelDeploymentEnvironmentConfigurationDetails,
    SingleModelDeploymentConfigurationDetails,
    SingleModelDeploymentFlexConfigurationDetails,
    ThresholdBasedAutoScalingPolicyDetails,
)

from app.discovery.deployments import (
    InferenceContainer,
    classify_image,
    from_summary,
    is_aqua_tags,
)

OCID = "ocid1.datasciencemodeldeployment.oc1.iad.amaaaaaabcdefgh"
URL = f"https://modeldeployment.us-ashburn-1.oci.customer-oci.com/{OCID}"
CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _summary(**overrides) -> ModelDeploymentSummary:
    config = SingleModelDeploymentConfigurationDetails(
        deployment_type="SINGLE_MODEL",
        model_configuration_details=ModelConfigurationDetails(
            model_id="ocid1.datasciencemodel.oc1.iad.x",
            instance_configuration=InstanceConfiguration(instance_shape_name="VM.GPU.A10.2"),
            scaling_policy=FixedSizeScalingPolicy(policy_type="FIXED_SIZE", instance_count=3),
            bandwidth_mbps=10,
        ),
        environment_configuration_details=OcirModelDeploymentEnvironmentConfigurationDetails(
            environment_configuration_type="OCIR_CONTAINER",
            image="dsmc://odsc-vllm-serving:0.22.1.1",
            environment_variables={"PARAMS": "--served-model-name odsc-llm"},
        ),
    )
    values = {
        "id": OCID,
        "display_name": "Llama 3.1 8B",
        "model_deployment_url": URL,
        "lifecycle_state": "ACTIVE",
        "compartment_id": "ocid1.compartment.oc1..c",
        "project_id": "ocid1.datascienceproject.oc1.iad.p",
        "freeform_tags": {"OCI_AQUA": "active", "aqua_model_name": "Meta-Llama-3.1-8B-Instruct"},
        "defined_tags": {},
        "time_created": CREATED,
        "model_deployment_configuration_details": config,
    }
    values.update(overrides)
    return ModelDeploymentSummary(**values)


def test_maps_every_field_of_an_aqua_vllm_deployment():
    deployment = from_summary(_summary(), region="us-ashburn-1")

    assert deployment.ocid == OCID
    assert deployment.display_name == "Llama 3.1 8B"
    assert deployment.url == URL
    assert deployment.lifecycle_state == "ACTIVE"
    assert deployment.is_active
    assert deployment.compartment_id == "ocid1.compartment.oc1..c"
    assert deployment.project_id == "ocid1.datascienceproject.oc1.iad.p"
    assert deployment.region == "us-ashburn-1"
    assert deployment.is_aqua
    assert deployment.aqua_model == "Meta-Llama-3.1-8B-Instruct"
    assert deployment.shape == "VM.GPU.A10.2"
    assert deployment.instance_count == 3
    assert deployment.inference_container is InferenceContainer.VLLM
    assert deployment.image == "dsmc://odsc-vllm-serving:0.22.1.1"
    assert deployment.time_created == CREATED


def test_a_snake_case_dict_maps_like_the_model():
    import oci

    as_dict = oci.util.to_dict(_summary())
    as_dict["time_created"] = CREATED  # to_dict renders datetimes as text
    assert from_summary(as_dict, region="us-ashburn-1") == from_summary(
        _summary(), region="us-ashburn-1"
    )


def test_missing_configuration_gives_unknowns_not_errors():
    deployment = from_summary(
        _summary(
            model_deployment_configuration_details=None, freeform_tags=None, time_created=None
        ),
        region="eu-frankfurt-1",
    )
    assert (deployment.shape, deployment.instance_count, deployment.image) == ("", None, "")
    assert deployment.inference_container is InferenceContainer.OTHER
    assert not deployment.is_aqua
    assert deployment.aqua_model == ""
    assert deployment.time_created is None


def test_autoscaling_reports_the_maximum_instance_count():
    summary = _summary()
    details = summary.model_deployment_configuration_details.model_configuration_details
    details.scaling_policy = AutoScalingPolicy(
        policy_type="AUTOSCALING",
        auto_scaling_policies=[
            ThresholdBasedAutoScalingPolicyDetails(
                auto_scaling_policy_type="THRESHOLD",
                minimum_instance_count=1,
                maximum_instance_count=4,
                initial_instance_count=2,
            )
        ],
    )
    assert from_summary(summary, region="r").instance_count == 4


def test_flex_deployment_keeps_shape_in_infrastructure_details():
    config = SingleModelDeploymentFlexConfigurationDetails(
        deployment_type="SINGLE_MODEL_FLEX",
        infrastructure_configuration_details=InstancePoolInfrastructureConfigurationDetails(
            infrastructure_type="INSTANCE_POOL",
            instance_configuration=InstanceConfiguration(instance_shape_name="BM.GPU.H100.8"),
            scaling_policy=FixedSizeScalingPolicy(policy_type="FIXED_SIZE", instance_count=1),
        ),
    )
    deployment = from_summary(_summary(model_deployment_configuration_details=config), region="r")
    assert (deployment.shape, deployment.instance_count) == ("BM.GPU.H100.8", 1)


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"OCI_AQUA": "active"}, True),
        ({"OCI_AQUA": ""}, True),
        ({"oci_aqua": "whatever"}, True),
        ({"aqua_model_name": "x"}, False),
        ({"Oci_Aqua": "active"}, False),
        ({}, False),
        (None, False),
    ],
)
def test_aqua_is_the_presence_of_the_tag_key(tags, expected):
    assert is_aqua_tags(tags) is expected


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("dsmc://odsc-vllm-serving:0.22.1.1", "vllm"),
        ("dsmc://odsc-vllm-serving-v1:0.9.1", "vllm"),
        ("dsmc://odsc-vllm-serving-llama4:0.8.3", "vllm"),
        ("iad.ocir.io/ns/odsc-vllm-serving-openai:0.10@sha256:abc", "vllm"),
        ("docker.io/vllm/vllm-openai:v0.11.0", "vllm"),
        ("dsmc://odsc-tgi-serving:2.0.1.4", "tgi"),
        ("dsmc://odsc-text-generation-inference:1.4.5", "tgi"),
        ("ghcr.io/huggingface/text-generation-inference:3.0", "tgi"),
        ("dsmc://odsc-llama-cpp-serving:0.3.7.1", "llama_cpp"),
        ("dsmc://odsc-llama-cpp-python-aio-linux_arm64_v8:0.2", "llama_cpp"),
        ("localhost:5000/my-flask-app:1", "other"),
        ("iad.ocir.io/ns/tgi-lookalike:1", "other"),
        ("", "other"),
        (None, "other"),
    ],
)
def test_inference_container_from_image(image, expected):
    assert classify_image(image).value == expected
