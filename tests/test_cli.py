"""The `aqua-metrics` command as a user runs it: a real process, its exit code and its output."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from testkit.ports import refused_port, reserve_port
from testkit.stack import base_environment

MD_URL = "https://modeldeployment.eu-frankfurt-1.oci.customer-oci.com/ocid1.datasciencemodeldeployment.oc1.eu-frankfurt-1.amaaaaaaexample0123456789"


def run_cli(*args: str, timeout: float = 30, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=base_environment(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write_api_key_profile(
    tmp_path, *, key_bytes: bytes | None = None, passphrase: str | None = None
):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    key_file = tmp_path / "oci_api_key.pem"
    key_file.write_bytes(
        key_bytes
        if key_bytes is not None
        else key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, encryption
        )
    )
    config = tmp_path / "config"
    lines = [
        "[DEFAULT]",
        "user=ocid1.user.oc1..aaaaexampleuser",
        "fingerprint=12:34:56:78:90:ab:cd:ef:12:34:56:78:90:ab:cd:ef",
        "tenancy=ocid1.tenancy.oc1..aaaaexampletenancy",
        "region=eu-frankfurt-1",
        f"key_file={key_file}",
    ]
    if passphrase:
        lines.append(f"pass_phrase={passphrase}")
    config.write_text("\n".join(lines) + "\n")
    return config


def test_check_with_no_settings_describes_the_demo(tmp_path):
    result = run_cli("check", DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "aqua-metrics: configuration OK"
    for name in ("demo-chat", "demo-support-bot", "demo-batch-jobs"):
        assert f"{name}  built-in simulated vLLM deployment" in result.stdout
    assert "auth: none" in result.stdout


def test_check_resolves_a_real_target_and_api_key_profile(tmp_path):
    config = write_api_key_profile(tmp_path, passphrase="correct horse")
    result = run_cli("check", TARGET=MD_URL, OCI_CONFIG_FILE=str(config), DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "auth: api_key (chosen by OCI_AUTH=auto), profile DEFAULT in" in result.stdout
    assert f"{MD_URL}/predict/metrics" in result.stdout
    assert "region=eu-frankfurt-1" in result.stdout
    assert "correct horse" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("key_bytes", "passphrase", "expected"),
    [
        (
            b"-----BEGIN RSA PRIVATE KEY-----\ngarbage\n-----END RSA PRIVATE KEY-----\n",
            None,
            "is not a usable private key",
        ),
        (None, "wrong-on-purpose", "is not a usable private key, or its pass_phrase is wrong"),
    ],
)
def test_check_rejects_unusable_keys_in_one_line(tmp_path, key_bytes, passphrase, expected):
    config = write_api_key_profile(
        tmp_path, key_bytes=key_bytes, passphrase="right-one" if passphrase else None
    )
    if passphrase:
        text = config.read_text().replace("pass_phrase=right-one", f"pass_phrase={passphrase}")
        config.write_text(text)
    result = run_cli("check", TARGET=MD_URL, OCI_CONFIG_FILE=str(config))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert "wrong-on-purpose" not in result.stderr and "right-one" not in result.stderr


def test_check_lists_every_problem_and_never_a_secret(tmp_path):
    result = run_cli(
        "check",
        PROXY_PORT="x",
        OCI_AUTH="bogus",
        PROMETHEUS_EXPOSE="true",
        GF_SECURITY_ADMIN_PASSWORD="topsecret-admin",
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert [line.split(":")[1].strip() for line in lines] == [
        "OCI_AUTH",
        "PROXY_PORT",
        "PROMETHEUS_EXPOSE",
    ]
    assert all(line.startswith("aqua-metrics: ") for line in lines)
    assert "topsecret-admin" not in result.stderr + result.stdout


def test_proxy_refuses_bad_input_before_binding(tmp_path):
    # The port is held by this test: had the proxy tried to bind before validating, it would have
    # failed with "address already in use" instead of the one-line settings error.
    with refused_port() as port:
        result = run_cli("proxy", PROXY_PORT=str(port), TARGET="http://example.com/metrics")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "aqua-metrics: TARGET: 'http://example.com/metrics' uses plain http; "
        "only https is allowed, except for loopback hosts"
    )


def test_proxy_serves_and_stops_on_sigterm(tmp_path):
    with reserve_port() as reservation:  # nobody else can take it before the proxy binds
        _serve_and_stop_on_sigterm(reservation.port)


def _serve_and_stop_on_sigterm(port: int) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "proxy"],
        env=base_environment({"PROXY_PORT": str(port)}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        import urllib.request

        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/readyz", timeout=1
                ) as response:
                    assert response.read() == b"ready\n"
                    break
            except OSError:
                assert time.monotonic() < deadline, (
                    process.stderr.read() if process.poll() is not None else "timeout"
                )
                time.sleep(0.1)
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=15)
    assert "Traceback" not in stderr
    assert process.returncode in (0, -15)


def test_version_and_help():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("aqua-metrics ")
    result = run_cli("--help")
    for command in ("check", "proxy", "start", "health", "ctl"):
        assert command in result.stdout


CHECK_IN_CHILD = """
import sys
from app.errors import ConfigError
from app.settings import load_settings
from app.stack.start import plan_stack
try:
    plan_stack(load_settings())
except ConfigError as exc:
    print(repr(exc.problems))
print("oci loaded here" if "oci" in sys.modules else "oci not loaded here")
"""


def test_start_learns_about_bad_credentials_from_a_child_without_loading_the_sdk(tmp_path):
    config = write_api_key_profile(tmp_path, passphrase="right-one")
    config.write_text(config.read_text().replace("pass_phrase=right-one", "pass_phrase=wrong"))
    result = subprocess.run(
        [sys.executable, "-c", CHECK_IN_CHILD],
        env=base_environment({"TARGET": MD_URL, "OCI_CONFIG_FILE": str(config)}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    problems, where = result.stdout.strip().splitlines()
    assert problems.startswith("['OCI_CONFIG_PROFILE ([DEFAULT] in ")
    assert problems.endswith("is not a usable private key, or its pass_phrase is wrong']")
    assert where == "oci not loaded here"
    assert "right-one" not in result.stdout + result.stderr
    assert result.stderr == ""


# ---- discover ----------------------------------------------------------------------------------


@pytest.fixture
def datascience(registry):
    from testkit.datascience_api import DataScienceApi

    with DataScienceApi(registry, max_limit=2) as api:  # pages of 2: paging is exercised
        yield api


def _discover_env(api_key, datascience, compartment, **extra):
    return {
        "OCI_CONFIG_FILE": str(api_key.config_path),
        "OCI_COMPARTMENT_ID": compartment,
        "OCI_DATA_SCIENCE_ENDPOINT": datascience.endpoint,
        **extra,
    }


def test_discover_prints_the_fleet_table(api_key, datascience):
    from testkit.oci_credentials import fake_ocid

    compartment = fake_ocid("compartment")
    chat = datascience.add("Chat prod", compartment_id=compartment, aqua_model="Llama-3.1-8B")
    datascience.add("Old", compartment_id=compartment, lifecycle_state="FAILED")
    datascience.add("Custom", compartment_id=compartment, aqua=False)
    result = run_cli("discover", **_discover_env(api_key, datascience, compartment))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATE", "MODEL", "CONTAINER", "SHAPE", "SCRAPED", "URL"]
    chat_row = next(line for line in lines if line.startswith("chat-prod "))
    assert chat_row.split()[:6] == [
        "chat-prod",
        "ACTIVE",
        "Llama-3.1-8B",
        "vllm",
        "VM.GPU.A10.2",
        "yes",
    ]
    assert chat_row.endswith(chat.model_deployment_url)
    assert "no: not ACTIVE (FAILED)" in next(line for line in lines if line.startswith("old "))
    assert "no: not an AQUA deployment ('Custom'; DISCOVERY_SCOPE=all includes it)" in result.stdout
    assert len(lines) == 4
    # Every page of the listing was signed with the profile's key (verified by the stand-in).
    assert len(datascience.calls) == 2 and all(c.verified for c in datascience.calls)


def test_discover_failure_is_one_line_with_the_policy_hint(api_key, datascience):
    from testkit.oci_credentials import fake_ocid

    compartment = fake_ocid("compartment")
    datascience.deny_compartment(compartment)
    result = run_cli("discover", **_discover_env(api_key, datascience, compartment))
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(
        "aqua-metrics: discovery failed (not_authorized: HTTP 404 NotAuthorizedOrNotFound); "
    )
    assert (
        "allow dynamic-group <group> to read data-science-model-deployments in compartment" in line
    )


def test_discover_without_a_compartment_says_what_to_set():
    result = run_cli("discover")
    assert result.returncode == 2
    assert result.stderr == (
        "aqua-metrics: OCI_COMPARTMENT_ID: not set; give the compartment(s) to list deployments in\n"
    )


def test_check_describes_discovery(api_key, datascience):
    compartment = "ocid1.compartment.oc1..aaaaexample"
    result = run_cli(
        "check", **_discover_env(api_key, datascience, compartment, OCI_REGION="us-phoenix-1")
    )
    assert result.returncode == 0, result.stderr
    assert "  (none configured; discovery finds them)" in result.stdout
    assert f"discovery: every 60s, AQUA deployments in {compartment}" in result.stdout
    assert (
        f"  listed from {datascience.endpoint}; `aqua-metrics discover` lists them now"
        in result.stdout
    )
    assert datascience.calls == []  # check lists nothing


def test_check_describes_the_central_store_without_its_secrets(tmp_path):
    result = run_cli(
        "check",
        DATA_DIR=str(tmp_path),
        PROMETHEUS_MODE="agent",
        MONITOR_NAME="fra-prod",
        REMOTE_WRITE_URL="https://mimir.example.invalid/api/v1/push",
        REMOTE_WRITE_BEARER_TOKEN="write-secret-9",
        GRAFANA_DATASOURCE_URL="https://mimir.example.invalid/prometheus",
        GRAFANA_DATASOURCE_BASIC_AUTH_USER="reader",
        GRAFANA_DATASOURCE_BASIC_AUTH_PASSWORD="read-secret-9",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "prometheus mode: agent; samples labelled aqua_monitor=fra-prod" in lines
    assert "remote_write: https://mimir.example.invalid/api/v1/push" in lines
    assert "grafana datasource: https://mimir.example.invalid/prometheus" in lines
    assert "secret-9" not in result.stdout + result.stderr
