"""The OCI Notifications stand-in, judged by the real `oci` SDK client.

The SDK's own `NotificationDataPlaneClient.publish_message` signs the POST (body included) and
parses the answer into its `PublishResult` model; if it accepts our JSON and our verifier accepts
its signature (and refuses what it should), alert tests can trust the stand-in.
"""

from __future__ import annotations

import datetime
import urllib.error
import urllib.request

import oci
import pytest
from oci._vendor import requests  # the SDK's own copy of requests
from oci.ons.models import MessageDetails, PublishResult
from oci.signer import Signer

from testkit.cavage import BODY_HEADERS
from testkit.oci_credentials import fake_ocid, make_api_key_profile
from tests.support.notifications_api import NotificationsApi

TOPIC = fake_ocid("onstopic", "iad")


@pytest.fixture
def api(registry):
    with NotificationsApi(registry, {TOPIC}) as server:
        yield server


def client_for(config_path, endpoint) -> oci.ons.NotificationDataPlaneClient:
    return oci.ons.NotificationDataPlaneClient(
        oci.config.from_file(str(config_path)),
        service_endpoint=endpoint,
        retry_strategy=oci.retry.NoneRetryStrategy(),
        circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy(),
        timeout=(2, 5),
    )


def test_sdk_publishes_a_signed_message_and_parses_the_publish_result(api, api_key):
    client = client_for(api_key.config_path, api.endpoint)
    details = MessageDetails(title="[FIRING] AquaDeploymentDown: md-x", body="it is down")
    result = client.publish_message(TOPIC, details).data

    assert isinstance(result, PublishResult)
    assert result.message_id.startswith("ocid1.onsmessage.")
    assert isinstance(result.time_stamp, datetime.datetime)
    [message] = api.messages
    assert (message.topic_id, message.title, message.body) == (TOPIC, details.title, "it is down")
    assert message.message_id == result.message_id
    assert message.verified.key_id == api_key.key_id
    assert set(BODY_HEADERS) <= set(message.verified.params.headers), "the body must be signed"


def test_a_key_the_service_does_not_know_is_refused_with_401(api, tmp_path):
    stranger = make_api_key_profile(tmp_path)  # never registered with the stand-in
    with pytest.raises(oci.exceptions.ServiceError) as refused:
        client_for(stranger.config_path, api.endpoint).publish_message(
            TOPIC, MessageDetails(title="t", body="b")
        )
    assert (refused.value.status, refused.value.code) == (401, "NotAuthenticated")
    assert api.messages == []


def test_an_unknown_topic_is_404_not_authorized_or_not_found(api, api_key):
    with pytest.raises(oci.exceptions.ServiceError) as missing:
        client_for(api_key.config_path, api.endpoint).publish_message(
            fake_ocid("onstopic", "iad"), MessageDetails(title="t", body="b")
        )
    assert (missing.value.status, missing.value.code) == (404, "NotAuthorizedOrNotFound")


def test_injected_failures_answer_500_then_publishing_works_again(api, api_key):
    client = client_for(api_key.config_path, api.endpoint)
    api.fail_next(2)
    for _ in range(2):
        with pytest.raises(oci.exceptions.ServiceError) as failed:
            client.publish_message(TOPIC, MessageDetails(title="t", body="b"))
        assert failed.value.status == 500
    client.publish_message(TOPIC, MessageDetails(title="t", body="b"))
    assert [call.status for call in api.calls] == [500, 500, 200]
    assert len(api.messages) == 1


def test_a_tampered_body_fails_verification(api, api_key):
    """The signature covers x-content-sha256: the verifier must notice a body that changed."""
    signer = Signer(
        api_key.tenancy, api_key.user, api_key.fingerprint, str(api_key.key.private_path)
    )
    url = f"{api.endpoint}/20181201/topics/{TOPIC}/messages"
    body = b'{"title": "t", "body": "original"}'
    prepared = requests.Request(
        "POST", url, headers={"content-type": "application/json"}, data=body
    ).prepare()
    signer(prepared)  # adds date, host, content-length, x-content-sha256 and signs them
    tampered = body.replace(b"original", b"tampered")
    request = urllib.request.Request(url, data=tampered, method="POST")
    for name, value in prepared.headers.items():
        request.add_header(name, value)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401
    assert api.calls[-1].error and "sha256" in api.calls[-1].error.lower()
    assert api.messages == []
