"""Alerting settings: receivers, Alertmanager, timing. One line per problem, secrets never echoed."""

from __future__ import annotations

import pytest

from app.settings import ConfigError, load_settings
from testkit.oci_credentials import fake_ocid

TOPIC = fake_ocid("onstopic", "iad")
SLACK = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"
HOOK = "https://alerts.example.com/hook/s3cr3t-path"


def problems(env):
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    return info.value.problems


def test_by_default_alertmanager_runs_with_no_receiver(tmp_path):
    alerting = load_settings({"DATA_DIR": str(tmp_path)}).alerting
    assert alerting.port == 9093
    assert alerting.receivers == ()
    assert (alerting.group_wait, alerting.group_interval, alerting.repeat_interval) == (
        "30s",
        "5m",
        "4h",
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"OCI_NOTIFICATION_TOPIC_ID": "my-topic"},
            "OCI_NOTIFICATION_TOPIC_ID: not a Notifications topic OCID",
        ),
        (
            {"OCI_NOTIFICATION_TOPIC_ID": fake_ocid("compartment", "iad")},
            "OCI_NOTIFICATION_TOPIC_ID: not a Notifications topic OCID",
        ),
        (
            {"ALERT_WEBHOOK_URL": "http://alerts.example.com/hook/s3cr3t"},
            "ALERT_WEBHOOK_URL: must be an https URL (plain http only on a loopback host)",
        ),
        (
            {"ALERT_SLACK_WEBHOOK_URL": "http://hooks.slack.com/services/x"},
            "ALERT_SLACK_WEBHOOK_URL: must be an https URL",
        ),
        (
            {"ALERT_EMAIL_TO": "ops@example.com", "SMTP_FROM": "aqua@example.com"},
            "ALERT_EMAIL_TO: e-mail needs SMTP_SMARTHOST (host:port)",
        ),
        (
            {"ALERT_EMAIL_TO": "ops@example.com", "SMTP_SMARTHOST": "smtp.example.com:587"},
            "ALERT_EMAIL_TO: e-mail needs SMTP_FROM",
        ),
        (
            {
                "ALERT_EMAIL_TO": "ops@example.com",
                "SMTP_FROM": "aqua@example.com",
                "SMTP_SMARTHOST": "smtp.example.com",
            },
            "SMTP_SMARTHOST: 'smtp.example.com' is not host:port",
        ),
        ({"SMTP_SMARTHOST": "smtp.example.com:25"}, "SMTP_SMARTHOST: set ALERT_EMAIL_TO too"),
        (
            {"ALERT_WEBHOOK_BEARER_TOKEN": "t0k3n"},
            "ALERT_WEBHOOK_BEARER_TOKEN: set ALERT_WEBHOOK_URL",
        ),
        ({"ALERT_GROUP_WAIT": "soon"}, "ALERT_GROUP_WAIT: 'soon' is not a duration"),
        (
            {"ALERTMANAGER_PORT": "9090"},
            "ALERTMANAGER_PORT: port 9090 is already used by PROMETHEUS_PORT",
        ),
        (
            {"GRAFANA_ROOT_URL": "grafana.example.com"},
            "GRAFANA_ROOT_URL: 'grafana.example.com' is not an http(s) URL",
        ),
    ],
)
def test_each_bad_alerting_setting_is_one_line_naming_it(env, expected, tmp_path):
    found = problems({"DATA_DIR": str(tmp_path), **env})
    assert len(found) == 1 and found[0].startswith(expected), found


def test_a_plain_http_notifications_endpoint_off_loopback_is_refused(tmp_path, api_key):
    found = problems(
        {
            "DATA_DIR": str(tmp_path),
            "OCI_AUTH": "api_key",
            "OCI_CONFIG_FILE": str(api_key.config_path),
            "OCI_NOTIFICATION_TOPIC_ID": TOPIC,
            "OCI_NOTIFICATIONS_ENDPOINT": "http://notification.example.com",
        }
    )
    assert found == [
        "OCI_NOTIFICATIONS_ENDPOINT: must be an https URL (plain http only on a loopback host)"
    ]


def test_the_three_issue_examples_are_exactly_one_line_each(tmp_path):
    for env in (
        {"OCI_NOTIFICATION_TOPIC_ID": "ocid1.compartment.oc1..aaaa"},
        {"ALERT_WEBHOOK_URL": "http://alerts.example.com/hook"},
        {"ALERT_EMAIL_TO": "ops@example.com", "SMTP_FROM": "aqua@example.com"},
    ):
        assert len(problems({"DATA_DIR": str(tmp_path), **env})) == 1, env


def test_webhook_and_slack_urls_are_never_echoed(tmp_path):
    found = problems(
        {
            "DATA_DIR": str(tmp_path),
            "ALERT_WEBHOOK_URL": "http://alerts.example.com/hook/s3cr3t-path",
            "ALERT_SLACK_WEBHOOK_URL": "ftp://hooks.slack.com/XXXXsecretXXXX",
        }
    )
    assert len(found) == 2
    assert not any("s3cr3t" in line or "XXXXsecretXXXX" in line for line in found)


def test_loopback_http_is_accepted_for_webhooks_and_the_endpoint(tmp_path, api_key):
    settings = load_settings(
        {
            "DATA_DIR": str(tmp_path),
            "OCI_AUTH": "api_key",
            "OCI_CONFIG_FILE": str(api_key.config_path),
            "OCI_NOTIFICATION_TOPIC_ID": TOPIC,
            "OCI_NOTIFICATIONS_ENDPOINT": "http://127.0.0.1:8999/",
            "ALERT_WEBHOOK_URL": "http://127.0.0.1:9999/hook",
        }
    )
    assert settings.alerting.notifications_endpoint == "http://127.0.0.1:8999"
    assert settings.alerting.receivers == ("oci-notifications", "webhook")


def test_secrets_come_from_file_variants(tmp_path):
    (tmp_path / "slack").write_text(SLACK + "\n")
    (tmp_path / "hook").write_text(HOOK + "\n")
    (tmp_path / "token").write_text("bearer-t0k3n\n")
    (tmp_path / "smtp").write_text("smtp-pa55\n")
    alerting = load_settings(
        {
            "DATA_DIR": str(tmp_path),
            "ALERT_SLACK_WEBHOOK_URL__FILE": str(tmp_path / "slack"),
            "ALERT_WEBHOOK_URL__FILE": str(tmp_path / "hook"),
            "ALERT_WEBHOOK_BEARER_TOKEN__FILE": str(tmp_path / "token"),
            "ALERT_EMAIL_TO": "ops@example.com, oncall@example.com",
            "SMTP_SMARTHOST": "smtp.example.com:587",
            "SMTP_FROM": "aqua@example.com",
            "SMTP_USERNAME": "aqua",
            "SMTP_PASSWORD__FILE": str(tmp_path / "smtp"),
        }
    ).alerting
    assert alerting.slack_webhook_url.value == SLACK
    assert alerting.webhook_url.value == HOOK
    assert alerting.webhook_bearer_token.value == "bearer-t0k3n"
    assert alerting.email.to == ("ops@example.com", "oncall@example.com")
    assert alerting.email.password.value == "smtp-pa55"
    assert alerting.receivers == ("slack", "webhook", "email")
    assert "smtp-pa55" not in repr(alerting) and HOOK not in repr(alerting)


def test_a_topic_makes_the_demo_sign_and_none_is_refused(tmp_path):
    found = problems(
        {"DATA_DIR": str(tmp_path), "OCI_AUTH": "none", "OCI_NOTIFICATION_TOPIC_ID": TOPIC}
    )
    assert found == [
        "OCI_NOTIFICATION_TOPIC_ID: publishing needs OCI credentials; OCI_AUTH is none"
    ]
    found = problems(
        {
            "DATA_DIR": str(tmp_path),
            "OCI_NOTIFICATION_TOPIC_ID": TOPIC,
            "OCI_CONFIG_FILE": str(tmp_path / "missing"),
        }
    )
    assert len(found) == 1 and found[0].startswith("OCI_AUTH: no OCI credentials found"), found


def test_the_proxy_must_be_on_loopback_or_wildcard_for_the_topic_route(tmp_path, api_key):
    found = problems(
        {
            "DATA_DIR": str(tmp_path),
            "OCI_AUTH": "api_key",
            "OCI_CONFIG_FILE": str(api_key.config_path),
            "OCI_NOTIFICATION_TOPIC_ID": TOPIC,
            "PROXY_HOST": "10.0.0.5",
        }
    )
    assert found and found[0].startswith("OCI_NOTIFICATION_TOPIC_ID: Alertmanager hands")


def test_a_users_config_file_replaces_the_generated_receivers(tmp_path):
    config = tmp_path / "alertmanager.yml"
    config.write_text("route:\n  receiver: mine\nreceivers:\n  - name: mine\n")
    alerting = load_settings(
        {"DATA_DIR": str(tmp_path), "ALERTMANAGER_CONFIG_FILE": str(config)}
    ).alerting
    assert alerting.config_text.value.startswith("route:")
    found = problems(
        {
            "DATA_DIR": str(tmp_path),
            "ALERTMANAGER_CONFIG_FILE": str(config),
            "ALERT_WEBHOOK_URL": HOOK,
        }
    )
    assert len(found) == 1 and found[0].startswith("ALERT_WEBHOOK_URL: ALERTMANAGER_CONFIG_FILE")
    assert problems(
        {"DATA_DIR": str(tmp_path), "ALERTMANAGER_CONFIG_FILE": str(tmp_path / "nope.yml")}
    )[0].startswith("ALERTMANAGER_CONFIG_FILE: cannot read")
