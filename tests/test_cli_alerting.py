"""`aqua-metrics check` and `start` with alerting settings, as a user runs them: real processes."""

from __future__ import annotations

import time

import pytest

from testkit.oci_credentials import fake_ocid
from testkit.stack import base_environment, run_start, short_tmp_dir
from tests.test_cli import run_cli

HOOK = "https://alerts.example.com/hook/s3cr3t-path"


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (
            {"OCI_NOTIFICATION_TOPIC_ID": "ocid1.compartment.oc1..aaaa"},
            "aqua-metrics: OCI_NOTIFICATION_TOPIC_ID: not a Notifications topic OCID",
        ),
        (
            {"ALERT_WEBHOOK_URL": "http://alerts.example.com/hook/s3cr3t-path"},
            "aqua-metrics: ALERT_WEBHOOK_URL: must be an https URL (plain http only on a loopback host)",
        ),
        (
            {"ALERT_EMAIL_TO": "ops@example.com", "SMTP_FROM": "aqua@example.com"},
            "aqua-metrics: ALERT_EMAIL_TO: e-mail needs SMTP_SMARTHOST (host:port)",
        ),
        (
            {"ALERTMANAGER_BIN": "/nonexistent/alertmanager"},
            "aqua-metrics: ALERTMANAGER_BIN: no alertmanager executable at /nonexistent/alertmanager",
        ),
    ],
)
def test_bad_alerting_settings_stop_start_with_one_line_and_nothing_running(settings, expected):
    data_dir = short_tmp_dir()
    started = time.monotonic()
    result = run_start(base_environment({"DATA_DIR": str(data_dir), **settings}), timeout=30)
    assert result.returncode == 2, result.stderr
    assert time.monotonic() - started < 10
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), result.stderr
    assert "s3cr3t" not in result.stderr + result.stdout
    assert not (data_dir / "runtime" / "alertmanager.yml").exists()
    assert not (data_dir / "runtime" / "supervisord.pid").exists()


def test_a_config_file_alertmanager_refuses_stops_start_before_anything_runs(tmp_path):
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        "route:\n  receiver: nobody\nreceivers:\n  - name: mine\n    webhook_configs:\n"
        f"      - url: {HOOK}\n"
    )
    data_dir = short_tmp_dir()
    env = base_environment({"DATA_DIR": str(data_dir), "ALERTMANAGER_CONFIG_FILE": str(config)})
    result = run_start(env, timeout=30)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(
        "aqua-metrics: ALERTMANAGER_CONFIG_FILE: amtool check-config refused the configuration: "
    )
    assert "nobody" in line and "s3cr3t" not in result.stdout + result.stderr
    assert not (data_dir / "runtime" / "supervisord.pid").exists()


def test_check_names_the_receivers_without_their_secrets(tmp_path):
    result = run_cli(
        "check",
        DATA_DIR=str(tmp_path),
        ALERT_WEBHOOK_URL=HOOK,
        ALERT_EMAIL_TO="ops@example.com",
        SMTP_SMARTHOST="smtp.example.com:587",
        SMTP_FROM="aqua@example.com",
        SMTP_USERNAME="aqua",
        SMTP_PASSWORD="smtp-pa55",
    )
    assert result.returncode == 0, result.stderr
    assert (
        "alerts: Alertmanager 127.0.0.1:9093, to webhook; e-mail to ops@example.com via "
        "smtp.example.com:587" in result.stdout
    )
    assert "s3cr3t" not in result.stdout and "smtp-pa55" not in result.stdout


def test_check_with_a_topic_names_it(tmp_path, api_key):
    topic = fake_ocid("onstopic", "iad")
    result = run_cli(
        "check",
        DATA_DIR=str(tmp_path),
        OCI_AUTH="api_key",
        OCI_CONFIG_FILE=str(api_key.config_path),
        OCI_NOTIFICATION_TOPIC_ID=topic,
    )
    assert result.returncode == 0, result.stderr
    assert f"OCI Notifications topic {topic}" in result.stdout


def test_an_alertmanager_port_in_use_is_reported_before_anything_starts():
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = base_environment({"DATA_DIR": str(short_tmp_dir()), "ALERTMANAGER_PORT": str(port)})
        result = run_start(env, timeout=30)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"aqua-metrics: ALERTMANAGER_PORT: 127.0.0.1:{port} is already in use"
    )
