"""The generated Alertmanager configuration, judged by Debian's real amtool and Alertmanager.

Every receiver combination passes `amtool check-config`; the file is 0600 and the only place the
secrets are written; grouping and inhibition work in a real Alertmanager process (alerts posted
to its API v2, their state read back); the alert names the inhibition rule relies on exist in the
rules Prometheus loads.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from app.alerts.amtool import check_config, scrub
from app.alerts.config import CAUSE_ALERTS, DOWN_ALERT, GROUP_BY, RECEIVER
from app.settings import load_settings
from app.stack import files
from app.stack.layout import DataLayout
from app.stack.runtime import prepare_directories, render_alertmanager_text, write_runtime_files
from testkit.binaries import find_alertmanager
from testkit.oci_credentials import fake_ocid
from testkit.ports import reserve_port
from testkit.waiting import wait_until
from tests.support.alert_webhook import AlertWebhook
from tests.support.smtp_recorder import SmtpRecorder

SLACK = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"
HOOK = "https://alerts.example.com/hook/s3cr3t-path"
TOKEN = "bearer-t0k3n-value"
SMTP_PASSWORD = "smtp-pa55-value"
EMAIL = {
    "ALERT_EMAIL_TO": "ops@example.com",
    "SMTP_SMARTHOST": "smtp.example.com:587",
    "SMTP_FROM": "aqua@example.com",
    "SMTP_USERNAME": "aqua",
    "SMTP_PASSWORD": SMTP_PASSWORD,
}


@pytest.fixture(scope="module")
def amtool() -> Path:
    return find_alertmanager().parent / "amtool"


def settings_for(tmp_path, api_key, **env):
    return load_settings(
        {
            "DATA_DIR": str(tmp_path / "data"),
            "OCI_AUTH": "api_key",
            "OCI_CONFIG_FILE": str(api_key.config_path),
            **env,
        }
    )


COMBINATIONS = {
    "none": {},
    "oci": {"OCI_NOTIFICATION_TOPIC_ID": fake_ocid("onstopic", "iad")},
    "slack": {"ALERT_SLACK_WEBHOOK_URL": SLACK},
    "webhook": {"ALERT_WEBHOOK_URL": HOOK, "ALERT_WEBHOOK_BEARER_TOKEN": TOKEN},
    "email": EMAIL,
    "all": {
        "OCI_NOTIFICATION_TOPIC_ID": fake_ocid("onstopic", "iad"),
        "ALERT_SLACK_WEBHOOK_URL": SLACK,
        "ALERT_WEBHOOK_URL": HOOK,
        "ALERT_WEBHOOK_BEARER_TOKEN": TOKEN,
        **EMAIL,
    },
}


@pytest.mark.parametrize("name", sorted(COMBINATIONS))
def test_every_receiver_combination_passes_amtool(name, tmp_path, api_key, amtool):
    settings = settings_for(tmp_path, api_key, **COMBINATIONS[name])
    config = tmp_path / "alertmanager.yml"
    config.write_text(render_alertmanager_text(settings))
    assert check_config(amtool, config, settings.alerting.secrets()) is None
    rendered = yaml.safe_load(config.read_text())
    [receiver] = rendered["receivers"]
    assert receiver["name"] == RECEIVER == rendered["route"]["receiver"]
    kinds = {key for key in receiver if key.endswith("_configs")}
    expected = {
        "none": set(),
        "oci": {"webhook_configs"},
        "slack": {"slack_configs"},
        "webhook": {"webhook_configs"},
        "email": {"email_configs"},
        "all": {"webhook_configs", "slack_configs", "email_configs"},
    }[name]
    assert kinds == expected
    for configs in kinds:
        assert all(item["send_resolved"] is True for item in receiver[configs])
    route = rendered["route"]
    assert route["group_by"] == list(GROUP_BY)
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == (
        "30s",
        "5m",
        "4h",
    )


def test_the_oci_receiver_posts_to_the_proxys_loopback_route(tmp_path, api_key):
    settings = settings_for(
        tmp_path, api_key, OCI_NOTIFICATION_TOPIC_ID=fake_ocid("onstopic", "iad"), PROXY_PORT="8123"
    )
    rendered = yaml.safe_load(render_alertmanager_text(settings))
    [webhook] = rendered["receivers"][0]["webhook_configs"]
    assert webhook["url"] == "http://127.0.0.1:8123/alerts/oci-notifications"


def test_secrets_go_only_into_the_0600_alertmanager_file(tmp_path, api_key):
    settings = settings_for(tmp_path, api_key, **COMBINATIONS["all"])
    layout = DataLayout(settings.data_dir)
    prepare_directories(layout)
    write_runtime_files(settings, layout, grafana_enabled=False)
    assert layout.alertmanager_config.stat().st_mode & 0o777 == 0o600
    text = layout.alertmanager_config.read_text()
    for secret in (SLACK, HOOK, TOKEN, SMTP_PASSWORD):
        assert secret in text
    for other in layout.runtime.iterdir():
        if other != layout.alertmanager_config:
            body = other.read_text(errors="replace")
            assert not any(s in body for s in (SLACK, HOOK, TOKEN, SMTP_PASSWORD)), other


def test_prometheus_sends_alerts_to_the_configured_alertmanager(tmp_path, api_key):
    settings = settings_for(tmp_path, api_key, ALERTMANAGER_PORT="9555")
    layout = DataLayout(settings.data_dir)
    prepare_directories(layout)
    write_runtime_files(settings, layout, grafana_enabled=False)
    config = yaml.safe_load(layout.prometheus_config.read_text())
    [manager] = config["alerting"]["alertmanagers"]
    assert manager["static_configs"] == [{"targets": ["127.0.0.1:9555"]}]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["alertmanager"]["static_configs"] == [{"targets": ["127.0.0.1:9555"]}]


def test_check_output_is_scrubbed_of_secrets(tmp_path, amtool):
    config = tmp_path / "bad.yml"
    # An unknown field makes amtool quote the line; the secret sits right beside it.
    config.write_text(
        "route:\n  receiver: r\nreceivers:\n  - name: r\n    webhook_configs:\n"
        f"      - url: {HOOK}\n        url_secret_typo: {HOOK}\n"
    )
    problem = check_config(amtool, config, [HOOK])
    assert problem is not None and "url_secret_typo" in problem
    assert "s3cr3t" not in problem
    assert scrub(f"a {HOOK} b", [HOOK, ""]) == "a <secret> b"


def test_inhibition_rule_names_alerts_that_prometheus_evaluates():
    rules = [
        rule
        for path in sorted(files.rules_dir().glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    names = {rule["alert"] for rule in rules}
    assert DOWN_ALERT in names
    assert set(CAUSE_ALERTS) <= names
    [down] = [rule for rule in rules if rule["alert"] == DOWN_ALERT]
    assert "deployment" in down["expr"].split("by", 1)[1].split(")", 1)[0], (
        "the down alert must keep the deployment label the inhibition matches on"
    )


# --- a real Alertmanager --------------------------------------------------------------------


@contextlib.contextmanager
def running_alertmanager(tmp_path: Path, config_text: str) -> Iterator[str]:
    """Debian's Alertmanager with this configuration on a reserved loopback port (no other
    process can take it before Alertmanager binds); yields its URL."""
    config = tmp_path / "alertmanager.yml"
    config.write_text(config_text)
    with reserve_port() as reservation:
        port = reservation.port
        process = subprocess.Popen(
            [
                str(find_alertmanager()),
                f"--config.file={config}",
                f"--storage.path={tmp_path / 'am'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1):
                    return True
            except OSError:
                if process.poll() is not None:
                    raise AssertionError(process.stderr.read().decode()) from None
                return False

        try:
            wait_until(ready, 20, 0.1, "alertmanager not ready")
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture
def alertmanager(tmp_path, api_key):
    """The generated configuration with no receiver."""
    with running_alertmanager(
        tmp_path, render_alertmanager_text(settings_for(tmp_path, api_key))
    ) as url:
        yield url


def post_alerts(url: str, alerts: list[dict]) -> None:
    request = urllib.request.Request(
        f"{url}/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def alert(name: str, deployment: str) -> dict:
    now = datetime.now(UTC)
    return {
        "labels": {"alertname": name, "deployment": deployment, "severity": "warning"},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=10)).isoformat(),
    }


def test_a_down_deployment_inhibits_its_other_alerts_only(alertmanager):
    post_alerts(
        alertmanager,
        [
            alert(DOWN_ALERT, "alpha"),
            alert("AquaKVCacheNearFull", "alpha"),
            alert(CAUSE_ALERTS[0], "alpha"),
            alert("AquaKVCacheNearFull", "beta"),
        ],
    )

    def states() -> dict | None:
        with urllib.request.urlopen(f"{alertmanager}/api/v2/alerts", timeout=5) as response:
            found = {
                (a["labels"]["alertname"], a["labels"]["deployment"]): a["status"]
                for a in json.load(response)
            }
        return found if len(found) == 4 else None

    def settled() -> dict | None:
        # The inhibitor marks alerts when it evaluates them; wait until the muted one is marked.
        found = states()
        return found if found and found[("AquaKVCacheNearFull", "alpha")]["inhibitedBy"] else None

    found = wait_until(settled, 20, 0.2, "inhibition never applied")
    assert found[("AquaKVCacheNearFull", "alpha")]["state"] == "suppressed"
    assert found[("AquaKVCacheNearFull", "beta")]["inhibitedBy"] == []
    assert found[(DOWN_ALERT, "alpha")]["inhibitedBy"] == []
    assert found[(CAUSE_ALERTS[0], "alpha")]["inhibitedBy"] == [], "causes stay visible"


def test_slack_webhook_and_email_receivers_deliver_from_a_real_alertmanager(tmp_path, api_key):
    """The generated Slack, webhook and e-mail receivers, to loopback stand-ins of each."""
    with AlertWebhook() as hooks, SmtpRecorder() as smtp:
        slack_url = f"{hooks.base_url}/services/T000/B000/XXXXsecretXXXX"
        settings = settings_for(
            tmp_path,
            api_key,
            ALERT_SLACK_WEBHOOK_URL=slack_url,
            ALERT_WEBHOOK_URL=hooks.url,
            ALERT_WEBHOOK_BEARER_TOKEN=TOKEN,
            ALERT_EMAIL_TO="ops@example.com, oncall@example.com",
            SMTP_SMARTHOST=smtp.smarthost,
            SMTP_FROM="aqua@example.com",
            SMTP_REQUIRE_TLS="false",
            ALERT_GROUP_WAIT="1s",
        )
        with running_alertmanager(tmp_path, render_alertmanager_text(settings)) as url:
            post_alerts(url, [alert(DOWN_ALERT, "alpha")])

            def delivered() -> bool:
                paths = {d.path for d in hooks.deliveries}
                return (
                    AlertWebhook.SECRET_PATH in paths
                    and "/services/T000/B000/XXXXsecretXXXX" in paths
                    and bool(smtp.mails)
                )

            wait_until(delivered, 30, 0.2, lambda: f"{hooks.deliveries} {smtp.mails}")
        [webhook] = [d for d in hooks.deliveries if d.path == AlertWebhook.SECRET_PATH]
        assert webhook.headers["authorization"] == f"Bearer {TOKEN}"
        assert webhook.concerns(DOWN_ALERT, "alpha") and webhook.status == "firing"
        [slack] = [d for d in hooks.deliveries if d.path.startswith("/services/")]
        assert DOWN_ALERT in json.dumps(slack.payload)
        [mail] = smtp.mails
        assert mail.sender == "aqua@example.com"
        assert set(mail.recipients) == {"ops@example.com", "oncall@example.com"}
        assert DOWN_ALERT in mail.message["Subject"]
