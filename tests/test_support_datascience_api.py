"""The Data Science control-plane stand-in, judged by the real `oci` SDK client.

If the SDK parses every field of our JSON into its own models (discriminators included), pages
through `opc-next-page` with its pagination helper, and our verifier refuses what it should, the
stand-in is faithful enough for discovery tests to trust.
"""

from __future__ import annotations

import datetime

import oci
import pytest
from oci.data_science.models import (
    FixedSizeScalingPolicy,
    ModelDeploymentSummary,
    OcirModelDeploymentEnvironmentConfigurationDetails,
    SingleModelDeploymentConfigurationDetails,
)

from testkit.datascience_api import TGI_IMAGE, DataScienceApi
from testkit.oci_credentials import fake_ocid, make_api_key_profile
from tests.support.sdk_signing import sdk_client, sign_with_sdk

COMPARTMENT = fake_ocid("compartment")
OTHER_COMPARTMENT = fake_ocid("compartment")


@pytest.fixture
def api(registry):
    with DataScienceApi(registry, default_limit=3) as server:
        yield server


@pytest.fixture(scope="module")
def signer(api_key):
    return oci.signer.Signer.from_config(oci.config.from_file(str(api_key.config_path)))


def _client(api, signer) -> oci.data_science.DataScienceClient:
    return sdk_client(oci.data_science.DataScienceClient, signer, api.endpoint)


def _list_all(api, signer, **kwargs):
    return oci.pagination.list_call_get_all_results(
        _client(api, signer).list_model_deployments,
        retry_strategy=oci.retry.NoneRetryStrategy(),
        **kwargs,
    ).data


def _list_once(api, signer, **kwargs):
    """One page, no retries: the pagination helper wraps every call in the SDK's default retry
    strategy, which would absorb the injected faults."""
    return (
        _client(api, signer)
        .list_model_deployments(retry_strategy=oci.retry.NoneRetryStrategy(), **kwargs)
        .data
    )


def test_sdk_parses_every_field_of_a_summary(api, signer):
    created = api.add(
        "Llama 3.1 8B (prod)",
        compartment_id=COMPARTMENT,
        aqua_model="Meta-Llama-3.1-8B-Instruct",
        instance_shape_name="VM.GPU.A10.2",
        instance_count=2,
        environment_variables={"PARAMS": "--served-model-name odsc-llm"},
        defined_tags={"Ops": {"team": "ml"}},
    )
    [summary] = _list_all(api, signer, compartment_id=COMPARTMENT)

    assert isinstance(summary, ModelDeploymentSummary)
    assert summary.id == created.id
    assert summary.display_name == "Llama 3.1 8B (prod)"
    assert summary.model_deployment_url == created.model_deployment_url
    assert summary.lifecycle_state == "ACTIVE"
    assert summary.compartment_id == COMPARTMENT
    assert summary.project_id == created.project_id
    assert summary.created_by == created.created_by
    assert summary.time_created == created.time_created
    assert isinstance(summary.time_created, datetime.datetime)
    assert summary.freeform_tags == {
        "OCI_AQUA": "active",
        "aqua_model_name": "Meta-Llama-3.1-8B-Instruct",
    }
    assert summary.defined_tags == {"Ops": {"team": "ml"}}
    config = summary.model_deployment_configuration_details
    assert isinstance(config, SingleModelDeploymentConfigurationDetails)
    assert config.deployment_type == "SINGLE_MODEL"
    model = config.model_configuration_details
    assert model.model_id == created.model_id
    assert model.instance_configuration.instance_shape_name == "VM.GPU.A10.2"
    assert isinstance(model.scaling_policy, FixedSizeScalingPolicy)
    assert model.scaling_policy.instance_count == 2
    assert model.bandwidth_mbps == 10
    environment = config.environment_configuration_details
    assert isinstance(environment, OcirModelDeploymentEnvironmentConfigurationDetails)
    assert environment.image == "dsmc://odsc-vllm-serving:0.22.1.1"
    assert environment.environment_variables == {"PARAMS": "--served-model-name odsc-llm"}


def test_pagination_helper_follows_opc_next_page_across_pages(api, signer):
    made = {api.add(f"md-{i}", compartment_id=COMPARTMENT).id for i in range(11)}
    api.add("elsewhere", compartment_id=OTHER_COMPARTMENT)

    listed = _list_all(api, signer, compartment_id=COMPARTMENT)

    assert {s.id for s in listed} == made
    assert len(listed) == 11  # no duplicates across page boundaries
    pages = [c for c in api.calls if c.status == 200]
    assert len(pages) == 4  # 3 + 3 + 3 + 2 with the stand-in's default page size
    assert "page" not in pages[0].query
    assert all("page" in c.query for c in pages[1:])


def test_limit_is_honoured_and_capped(registry, signer):
    with DataScienceApi(registry, max_limit=4) as api:
        for i in range(9):
            api.add(f"md-{i}", compartment_id=COMPARTMENT)
        listed = _list_all(api, signer, compartment_id=COMPARTMENT, limit=100)
        assert len(listed) == 9
        assert [c.query["limit"] for c in api.calls] == [["100"]] * 3


def test_lifecycle_and_project_filters(api, signer):
    active = api.add("a", compartment_id=COMPARTMENT)
    failed = api.add("f", compartment_id=COMPARTMENT, lifecycle_state="FAILED")
    project = fake_ocid("datascienceproject")
    in_project = api.add("p", compartment_id=COMPARTMENT, project_id=project)

    by_state = _list_all(api, signer, compartment_id=COMPARTMENT, lifecycle_state="FAILED")
    by_project = _list_all(api, signer, compartment_id=COMPARTMENT, project_id=project)

    assert [s.id for s in by_state] == [failed.id]
    assert [s.id for s in by_project] == [in_project.id]
    assert active.id not in {s.id for s in by_state + by_project}


def test_more_than_one_filter_is_refused_as_the_service_does(api, signer):
    with pytest.raises(oci.exceptions.ServiceError) as info:
        _list_once(
            api,
            signer,
            compartment_id=COMPARTMENT,
            lifecycle_state="ACTIVE",
            project_id=fake_ocid("datascienceproject"),
        )
    assert info.value.status == 400


def test_fleet_changes_show_in_the_next_listing(api, signer):
    keep = api.add("keep", compartment_id=COMPARTMENT)
    gone = api.add("gone", compartment_id=COMPARTMENT)
    api.rename(keep.id, "kept")
    api.set_state(keep.id, "NEEDS_ATTENTION")
    api.update(keep.id, image=TGI_IMAGE)
    api.delete(gone.id)

    [summary] = _list_all(api, signer, compartment_id=COMPARTMENT)

    assert (summary.id, summary.display_name, summary.lifecycle_state) == (
        keep.id,
        "kept",
        "NEEDS_ATTENTION",
    )
    env = summary.model_deployment_configuration_details.environment_configuration_details
    assert env.image == TGI_IMAGE


@pytest.mark.parametrize(
    ("status", "code"),
    [(429, "TooManyRequests"), (500, "InternalServerError"), (404, "NotAuthorizedOrNotFound")],
)
def test_faults_answer_oci_errors_for_n_requests(api, signer, status, code):
    api.add("a", compartment_id=COMPARTMENT)
    api.fail(status, times=2)
    for _ in range(2):
        with pytest.raises(oci.exceptions.ServiceError) as info:
            _list_once(api, signer, compartment_id=COMPARTMENT)
        assert (info.value.status, info.value.code) == (status, code)
    assert len(_list_all(api, signer, compartment_id=COMPARTMENT)) == 1


def test_fault_until_cleared_and_denied_compartment(api, signer):
    api.add("a", compartment_id=COMPARTMENT)
    api.fail(500)
    for _ in range(3):
        with pytest.raises(oci.exceptions.ServiceError):
            _list_once(api, signer, compartment_id=COMPARTMENT)
    api.clear_fault()
    api.deny_compartment(COMPARTMENT)
    with pytest.raises(oci.exceptions.ServiceError) as info:
        _list_once(api, signer, compartment_id=COMPARTMENT)
    assert (info.value.status, info.value.code) == (404, "NotAuthorizedOrNotFound")
    api.deny_compartment(COMPARTMENT, denied=False)
    assert len(_list_all(api, signer, compartment_id=COMPARTMENT)) == 1


def test_unknown_key_is_refused_with_not_authenticated(api, tmp_path):
    stranger = make_api_key_profile(tmp_path)  # never registered with the stand-in's registry
    foreign = oci.signer.Signer.from_config(oci.config.from_file(str(stranger.config_path)))
    with pytest.raises(oci.exceptions.ServiceError) as info:
        _list_once(api, foreign, compartment_id=COMPARTMENT)
    assert (info.value.status, info.value.code) == (401, "NotAuthenticated")
    assert api.calls[-1].error == "unknown API key"


def test_unsigned_and_tampered_requests_are_refused(api, signer):
    import httpx

    api.add("a", compartment_id=COMPARTMENT)
    url = f"{api.endpoint}/20190101/modelDeployments?compartmentId={COMPARTMENT}"
    unsigned = httpx.get(url)
    assert unsigned.status_code == 401
    assert unsigned.json()["code"] == "NotAuthenticated"

    headers = sign_with_sdk(signer, "GET", url)
    good = httpx.get(url, headers=headers)
    assert good.status_code == 200, good.text
    # Same signature, different query (another compartment): the signed target no longer matches.
    tampered = httpx.get(url.replace(COMPARTMENT, OTHER_COMPARTMENT), headers=headers)
    assert tampered.status_code == 401
    assert tampered.json()["code"] == "NotAuthenticated"
    assert api.calls[-1].error == "signature does not verify"


def test_json_keys_are_exactly_the_sdk_models_attribute_maps(api):
    """Every key we send is one the SDK model declares (a typo would be silently dropped)."""
    from oci.data_science.models import (
        InstanceConfiguration,
        ModelConfigurationDetails,
    )

    def keys(model) -> set[str]:
        return set(model().attribute_map.values())

    body = api.add("x", compartment_id=COMPARTMENT).to_json()
    config = body["modelDeploymentConfigurationDetails"]
    model = config["modelConfigurationDetails"]
    assert set(body) == keys(ModelDeploymentSummary)
    assert set(config) == keys(SingleModelDeploymentConfigurationDetails)
    assert set(model) <= keys(ModelConfigurationDetails)
    assert set(model["instanceConfiguration"]) <= keys(InstanceConfiguration)
    assert set(model["scalingPolicy"]) == keys(FixedSizeScalingPolicy)
    assert set(config["environmentConfigurationDetails"]) <= keys(
        OcirModelDeploymentEnvironmentConfigurationDetails
    )


def _get_once(api, signer, ocid):
    return _client(api, signer).get_model_deployment(
        ocid, retry_strategy=oci.retry.NoneRetryStrategy()
    )


def test_sdk_gets_one_deployment_with_every_field(api, signer):
    from oci.data_science.models import ModelDeployment

    created = api.add(
        "Llama 3.1 8B (prod)",
        compartment_id=COMPARTMENT,
        instance_count=2,
        environment_variables={"PARAMS": "--served-model-name odsc-llm"},
    )
    api.add("another", compartment_id=OTHER_COMPARTMENT)

    response = _get_once(api, signer, created.id)

    deployment = response.data
    assert isinstance(deployment, ModelDeployment)
    assert (deployment.id, deployment.compartment_id) == (created.id, COMPARTMENT)
    assert deployment.display_name == "Llama 3.1 8B (prod)"
    assert deployment.model_deployment_url == created.model_deployment_url
    assert deployment.lifecycle_state == "ACTIVE"
    assert deployment.time_created == created.time_created
    config = deployment.model_deployment_configuration_details
    assert isinstance(config, SingleModelDeploymentConfigurationDetails)
    assert config.model_configuration_details.scaling_policy.instance_count == 2
    assert response.headers["etag"]
    [call] = api.calls
    assert call.target == f"/20190101/modelDeployments/{created.id}"
    assert call.verified is not None and call.status == 200


def test_get_answers_404_for_unknown_denied_and_faulted(api, signer):
    created = api.add("a", compartment_id=COMPARTMENT)
    for ocid, deny, fault in (
        (fake_ocid("datasciencemodeldeployment", "iad"), False, None),
        (created.id, True, None),
        (created.id, False, 429),
    ):
        api.deny_compartment(COMPARTMENT, denied=deny)
        if fault:
            api.fail(fault, times=1)
        with pytest.raises(oci.exceptions.ServiceError) as info:
            _get_once(api, signer, ocid)
        expected = (429, "TooManyRequests") if fault else (404, "NotAuthorizedOrNotFound")
        assert (info.value.status, info.value.code) == expected
    assert _get_once(api, signer, created.id).data.compartment_id == COMPARTMENT


def test_get_refuses_an_unknown_key(api, tmp_path):
    created = api.add("a", compartment_id=COMPARTMENT)
    stranger = make_api_key_profile(tmp_path)
    foreign = oci.signer.Signer.from_config(oci.config.from_file(str(stranger.config_path)))
    with pytest.raises(oci.exceptions.ServiceError) as info:
        _get_once(api, foreign, created.id)
    assert (info.value.status, info.value.code) == (401, "NotAuthenticated")


def test_full_json_keys_are_exactly_the_sdk_model_s(api):
    from oci.data_science.models import ModelDeployment

    body = api.add("x", compartment_id=COMPARTMENT).to_full_json()
    assert set(body) == set(ModelDeployment().attribute_map.values())
