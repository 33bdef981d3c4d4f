"""OCI_MONITORING* settings: defaults, one-line problems naming the setting."""

from __future__ import annotations

import pytest

from app.settings import ConfigError, load_settings
from testkit.oci_credentials import fake_ocid

COMPARTMENT = fake_ocid("compartment")


def problems(env):
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    return info.value.problems


def test_defaults(tmp_path):
    config = load_settings({"DATA_DIR": str(tmp_path)}).oci_monitoring
    assert (config.mode, config.interval_seconds, config.endpoint) == ("auto", 60.0, None)
    assert config.compartment_ids == ()


def test_compartments_default_to_discovery_s_and_can_be_given_their_own(tmp_path):
    other = fake_ocid("compartment")
    base = {
        "DATA_DIR": str(tmp_path),
        "OCI_COMPARTMENT_ID": f"{COMPARTMENT}, {COMPARTMENT}",
        # Discovery needs credentials and a region; a resource principal environment gives both.
        "OCI_RESOURCE_PRINCIPAL_VERSION": "2.2",
        "OCI_REGION": "us-ashburn-1",
    }
    assert load_settings(base).oci_monitoring.compartment_ids == (COMPARTMENT,)
    own = load_settings({**base, "OCI_MONITORING_COMPARTMENT_ID": other})
    assert own.oci_monitoring.compartment_ids == (other,)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"OCI_MONITORING": "maybe"}, "OCI_MONITORING: 'maybe' is not one of auto, true, false"),
        (
            {"OCI_MONITORING_INTERVAL": "often"},
            "OCI_MONITORING_INTERVAL: 'often' is not a duration",
        ),
        (
            {"OCI_MONITORING_ENDPOINT": "http://telemetry.example.com"},
            "OCI_MONITORING_ENDPOINT: 'http://telemetry.example.com' uses plain http",
        ),
        (
            {"OCI_MONITORING_ENDPOINT": "https://telemetry.example.com/20180401"},
            "OCI_MONITORING_ENDPOINT: give only scheme://host[:port]",
        ),
        (
            {"OCI_MONITORING_COMPARTMENT_ID": "ocid1.user.oc1..x"},
            "OCI_MONITORING_COMPARTMENT_ID: 'ocid1.user.oc1..x' is not a compartment",
        ),
        ({"OCI_MONITORING": "true"}, "OCI_MONITORING: true needs the deployments' compartment"),
        (
            {"OCI_MONITORING": "true", "OCI_MONITORING_COMPARTMENT_ID": COMPARTMENT},
            "OCI_MONITORING: true needs signed requests",
        ),
    ],
)
def test_each_problem_is_one_line_naming_the_setting(env, expected, tmp_path):
    found = problems({"DATA_DIR": str(tmp_path), **env})
    assert any(line.startswith(expected) for line in found), found
    assert all("\n" not in line for line in found)


def test_loopback_endpoint_and_interval_are_accepted(tmp_path):
    config = load_settings(
        {
            "DATA_DIR": str(tmp_path),
            "OCI_MONITORING_ENDPOINT": "http://127.0.0.1:9999",
            "OCI_MONITORING_INTERVAL": "5s",
        }
    ).oci_monitoring
    assert (config.endpoint, config.interval_seconds) == ("http://127.0.0.1:9999", 5.0)


def test_true_without_a_compartment_is_accepted_for_targets_carrying_their_ocid(tmp_path):
    ocid = fake_ocid("datasciencemodeldeployment", "iad")
    env = {
        "DATA_DIR": str(tmp_path),
        "OCI_MONITORING": "true",
        # Signed requests: a resource principal environment.
        "OCI_RESOURCE_PRINCIPAL_VERSION": "2.2",
        "OCI_REGION": "us-ashburn-1",
    }
    plain = {**env, "TARGET": "https://llm.example.com"}
    assert any("true needs the deployments' compartment" in line for line in problems(plain))
    url = f"https://modeldeployment.us-ashburn-1.oci.customer-oci.com/{ocid}"
    config = load_settings({**env, "TARGETS": f"llama={url}"}).oci_monitoring
    assert (config.mode, config.compartment_ids) == ("true", ())
