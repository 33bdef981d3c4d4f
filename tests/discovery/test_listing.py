"""One listing over real loopback HTTP against the signature-checking Data Science stand-in."""

from __future__ import annotations

import socket

import oci
import pytest

from app.discovery.deployments import InferenceContainer
from app.discovery.listing import (
    DeploymentLister,
    ListingConfig,
    ListingError,
    compartment_problems,
    parse_compartments,
)
from app.oci_clients import client_config
from testkit.datascience_api import LLAMA_CPP_IMAGE, TGI_IMAGE
from testkit.oci_credentials import fake_ocid, make_api_key_profile
from testkit.ports import refused_port


def test_lists_every_state_with_fields_mapped(datascience, make_lister, compartment):
    active = datascience.add(
        "Llama 3.1", compartment_id=compartment, aqua_model="Meta-Llama-3.1-8B", instance_count=2
    )
    failed = datascience.add(
        "TGI one", compartment_id=compartment, lifecycle_state="FAILED", image=TGI_IMAGE
    )
    plain = datascience.add("byoc", compartment_id=compartment, aqua=False, image=None)

    found = {d.ocid: d for d in make_lister()()}

    assert set(found) == {active.id, failed.id, plain.id}
    llama = found[active.id]
    assert (llama.display_name, llama.url, llama.lifecycle_state) == (
        "Llama 3.1",
        active.model_deployment_url,
        "ACTIVE",
    )
    assert (llama.aqua_model, llama.is_aqua, llama.shape, llama.instance_count) == (
        "Meta-Llama-3.1-8B",
        True,
        "VM.GPU.A10.2",
        2,
    )
    assert llama.inference_container is InferenceContainer.VLLM
    assert llama.region == "us-ashburn-1"
    assert llama.time_created == active.time_created
    assert found[failed.id].inference_container is InferenceContainer.TGI
    assert found[plain.id].is_aqua is False
    assert found[plain.id].inference_container is InferenceContainer.OTHER
    # No lifecycle filter: the inventory needs every state. Pages of 100.
    assert all("lifecycleState" not in c.query for c in datascience.calls)
    assert all(c.query["limit"] == ["100"] for c in datascience.calls)


def test_hundreds_of_deployments_across_pages(datascience, make_lister, compartment):
    made = {
        datascience.add(f"md {i}", compartment_id=compartment, image=LLAMA_CPP_IMAGE).id
        for i in range(250)
    }
    found = make_lister()()
    assert {d.ocid for d in found} == made
    assert len(found) == 250
    pages = [c for c in datascience.calls if c.status == 200]
    assert len(pages) == 3  # 100 + 100 + 50
    assert all(c.verified is not None for c in pages)


def test_small_server_pages_are_followed_too(registry, sdk_signer, compartment):
    from testkit.datascience_api import DataScienceApi

    with DataScienceApi(registry, max_limit=9) as api:
        made = {api.add(f"m{i}", compartment_id=compartment).id for i in range(40)}
        lister = DeploymentLister(
            ListingConfig((compartment,), "us-ashburn-1", endpoint=api.endpoint),
            lambda: sdk_signer,
        )
        assert {d.ocid for d in lister()} == made
        assert len([c for c in api.calls if c.status == 200]) == 5


def test_project_filter_is_the_one_server_side_filter(datascience, make_lister, compartment):
    project = fake_ocid("datascienceproject", "iad")
    wanted = datascience.add("in", compartment_id=compartment, project_id=project)
    datascience.add("out", compartment_id=compartment)

    found = make_lister(project_id=project)()

    assert [d.ocid for d in found] == [wanted.id]
    [call] = datascience.calls
    assert call.query["projectId"] == [project]
    assert set(call.query) == {"compartmentId", "projectId", "limit"}


def test_several_compartments_are_listed(datascience, make_lister, compartment):
    second = fake_ocid("compartment")
    a = datascience.add("a", compartment_id=compartment)
    b = datascience.add("b", compartment_id=second)
    datascience.add("c", compartment_id=fake_ocid("compartment"))
    found = make_lister(compartment_ids=(compartment, second))()
    assert {d.ocid for d in found} == {a.id, b.id}


@pytest.mark.parametrize(
    ("status", "kind"),
    [(429, "throttled"), (500, "server_error"), (503, "server_error"), (404, "not_authorized")],
)
def test_api_errors_are_classified_without_sdk_retries(
    datascience, make_lister, compartment, status, kind
):
    datascience.add("a", compartment_id=compartment)
    datascience.fail(status, times=1)
    lister = make_lister()
    with pytest.raises(ListingError) as info:
        lister()
    assert info.value.kind == kind
    assert str(status) in info.value.summary
    assert len(datascience.calls) == 1  # neither the SDK nor the pagination helper retried
    if kind == "not_authorized":
        assert "data-science-model-deployments" in info.value.hint
    assert len(lister()) == 1  # and the next listing works


def test_a_failure_in_any_compartment_fails_the_listing(datascience, make_lister, compartment):
    denied = fake_ocid("compartment")
    datascience.add("a", compartment_id=compartment)
    datascience.deny_compartment(denied)
    with pytest.raises(ListingError) as info:
        make_lister(compartment_ids=(compartment, denied))()
    assert info.value.kind == "not_authorized"


def test_failure_on_a_later_page_fails_the_whole_listing(datascience, make_lister, compartment):
    for i in range(150):
        datascience.add(f"m{i}", compartment_id=compartment)
    datascience.fail(429, times=1, after=1)  # page 1 answers, page 2 is throttled
    with pytest.raises(ListingError) as info:
        make_lister()()
    assert info.value.kind == "throttled"
    assert [c.status for c in datascience.calls] == [200, 429]


def test_a_refused_signature_is_not_authenticated(datascience, compartment, tmp_path):
    stranger = make_api_key_profile(tmp_path)  # its key is unknown to the stand-in
    signer = oci.signer.Signer.from_config(oci.config.from_file(str(stranger.config_path)))
    lister = DeploymentLister(
        ListingConfig((compartment,), "us-ashburn-1", endpoint=datascience.endpoint),
        lambda: signer,
    )
    with pytest.raises(ListingError) as info:
        lister()
    assert info.value.kind == "not_authenticated"
    assert datascience.calls[-1].status == 401


def _failing_listing(compartment, sdk_signer, port: int, **timeouts: float) -> ListingError:
    """The error a listing against a loopback port raises."""
    lister = DeploymentLister(
        ListingConfig(
            (compartment,), "us-ashburn-1", endpoint=f"http://127.0.0.1:{port}", **timeouts
        ),
        lambda: sdk_signer,
    )
    with pytest.raises(ListingError) as info:
        lister()
    return info.value


def test_an_unreachable_endpoint_is_reported_as_such(compartment, sdk_signer):
    with refused_port() as port:  # held while the lister tries: no one else can listen there
        error = _failing_listing(compartment, sdk_signer, port, connect_timeout=1)
    assert error.kind == "unreachable"
    assert f"127.0.0.1:{port}" in error.summary


def test_a_silent_endpoint_times_out(compartment, sdk_signer):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts connections, never answers
        port = silent.getsockname()[1]
        error = _failing_listing(compartment, sdk_signer, port, connect_timeout=1, read_timeout=0.5)
    assert error.kind == "timeout"


def test_a_new_signer_object_gets_a_new_client(datascience, compartment, sdk_signer, api_key):
    signers = [sdk_signer]
    built = []

    def factory(signer, config):
        from app.discovery.listing import build_client

        built.append(signer)
        return build_client(signer, config)

    lister = DeploymentLister(
        ListingConfig((compartment,), "us-ashburn-1", endpoint=datascience.endpoint),
        lambda: signers[-1],
        client_factory=factory,
    )
    lister()
    lister()
    signers.append(oci.signer.Signer.from_config(oci.config.from_file(str(api_key.config_path))))
    lister()
    assert built == signers


def test_client_config_for_token_signers_needs_only_the_region():
    class TokenLike:
        api_key = "ST$eyJhbGciOi..."

    assert client_config(TokenLike(), "eu-frankfurt-1") == {"region": "eu-frankfurt-1"}


def test_compartment_setting_parsing():
    a, b = fake_ocid("compartment"), fake_ocid("tenancy")
    assert parse_compartments(f" {a}, ,{b},{a} ") == (a, b)
    assert compartment_problems([a, b]) == []
    assert compartment_problems(["ocid1.user.oc1..x"]) == [
        "OCI_COMPARTMENT_ID: 'ocid1.user.oc1..x' is not a compartment or tenancy OCID"
    ]


def test_a_session_token_signer_lists_too(registry, datascience, compartment, tmp_path):
    from oci.auth.signers import SecurityTokenSigner

    from testkit.oci_credentials import TokenIssuer, make_security_token_profile

    issuer = TokenIssuer()
    issuer.register_with(registry)
    session = make_security_token_profile(tmp_path, issuer)
    key = oci.signer.load_private_key_from_file(str(session.key.private_path))
    signer = SecurityTokenSigner(session.token, key)
    made = datascience.add("a", compartment_id=compartment)
    lister = DeploymentLister(
        ListingConfig((compartment,), "us-ashburn-1", endpoint=datascience.endpoint),
        lambda: signer,
    )
    assert [d.ocid for d in lister()] == [made.id]
    assert datascience.calls[-1].verified.key_id.startswith("ST$")


@pytest.mark.parametrize(
    ("endpoint", "problem"),
    [
        ("https://datascience.us-ashburn-1.oci.oraclecloud.com", None),
        ("http://127.0.0.1:8443", None),
        ("http://[::1]:8443", None),
        ("http://datascience.example.com", "uses plain http"),
        ("ftp://x", "is not an http(s) URL"),
        ("https://u:p@x.example.com", "user:password"),
        ("https://x.example.com/20190101", "only scheme://host[:port]"),
        ("https://x.example.com:99999", "is not a valid URL"),
    ],
)
def test_endpoint_setting_validation(endpoint, problem):
    from app.oci_clients import endpoint_problem

    found = endpoint_problem("OCI_DATA_SCIENCE_ENDPOINT", endpoint)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found
        assert found.startswith("OCI_DATA_SCIENCE_ENDPOINT: ")


def test_default_region_prefers_the_signer_then_the_profile(sdk_signer):
    from app.discovery.listing import default_region

    class Principal:
        region = "eu-frankfurt-1"

    assert default_region(Principal(), "us-ashburn-1") == "eu-frankfurt-1"
    assert default_region(sdk_signer, "us-phoenix-1") == "us-phoenix-1"
    assert default_region(sdk_signer) is None
