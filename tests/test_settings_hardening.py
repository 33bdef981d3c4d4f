"""Odd values an operator may type, through the real `check`, `proxy` and `start` commands.

Each must stop the command with one line naming the setting and exit code 2: no traceback, no
bind, nothing started (issue 16).
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app.settings import load_settings
from testkit.ports import free_port
from testkit.stack import base_environment, short_tmp_dir

LOCAL_TARGET = "http://127.0.0.1:9/metrics"


def _non_utf8_config(folder: Path) -> Path:
    path = folder / "config"
    path.write_bytes(b"[DEFAULT]\nuser=ocid1.user.oc1..\xff\xfe\n")
    return path


def _non_utf8_alertmanager_config(folder: Path) -> Path:
    path = folder / "alertmanager.yml"
    path.write_bytes(b"route:\n  receiver: \xff\xfe\n")
    return path


_EMAIL = {"ALERT_EMAIL_TO": "ops@example.com", "SMTP_FROM": "aqua@example.com"}
_HUGE = "9" * 5000  # more digits than int() converts (4300): a ValueError unless caught

# (settings, the line's expected start). Values that need a file get a callable.
BAD_VALUES = [
    # Numbers are ASCII digits only: other scripts' digits ("٢٤", "²") are not numbers here.
    ({"SCRAPE_INTERVAL": "٢٤s"}, "SCRAPE_INTERVAL: '٢٤s' is not a duration"),
    ({"SCRAPE_TIMEOUT": "²s"}, "SCRAPE_TIMEOUT: '²s' is not a duration"),
    ({"DEMO_DEPLOYMENTS": "٣"}, "DEMO_DEPLOYMENTS: '٣' is not a whole number from 1 to 10"),
    ({"DEMO_DEPLOYMENTS": "²"}, "DEMO_DEPLOYMENTS: '²' is not a whole number from 1 to 10"),
    (
        {**_EMAIL, "SMTP_SMARTHOST": "smtp.example.com:٢٥"},
        "SMTP_SMARTHOST: 'smtp.example.com:٢٥' is not host:port",
    ),
    (
        {**_EMAIL, "SMTP_SMARTHOST": "smtp.example.com:99999"},
        "SMTP_SMARTHOST: 'smtp.example.com:99999' is not host:port (port 1-65535)",
    ),
    ({"PROMETHEUS_RETENTION_SIZE": "٢GB"}, "PROMETHEUS_RETENTION_SIZE: '٢GB' is not a size"),
    ({"SCRAPE_BODY_SIZE_LIMIT": "٦٤MB"}, "SCRAPE_BODY_SIZE_LIMIT: '٦٤MB' is not a size"),
    # In range: huge numbers are too large, never a ValueError from int().
    ({"PROXY_PORT": _HUGE}, f"PROXY_PORT: '{_HUGE}' is not a port number (1-65535)"),
    ({"SCRAPE_SAMPLE_LIMIT": _HUGE}, f"SCRAPE_SAMPLE_LIMIT: '{_HUGE}' is too large"),
    ({"SCRAPE_INTERVAL": _HUGE + "s"}, f"SCRAPE_INTERVAL: '{_HUGE}s' is too long"),
    ({"PROMETHEUS_RETENTION_TIME": "300000d"}, "PROMETHEUS_RETENTION_TIME: '300000d' is too long"),
    ({"SCRAPE_BODY_SIZE_LIMIT": _HUGE + "MB"}, f"SCRAPE_BODY_SIZE_LIMIT: '{_HUGE}MB' is too large"),
    (
        {"PROMETHEUS_RETENTION_SIZE": _HUGE + "MB"},
        f"PROMETHEUS_RETENTION_SIZE: '{_HUGE}MB' is too large",
    ),
    ({"DEMO_DEPLOYMENTS": _HUGE}, "DEMO_DEPLOYMENTS: "),
    # Files a setting names: readable UTF-8 text, or one line naming the setting.
    (
        {"ALERTMANAGER_CONFIG_FILE": "~nosuchuser/alertmanager.yml"},
        "ALERTMANAGER_CONFIG_FILE: ~nosuchuser/alertmanager.yml: cannot expand ~",
    ),
    (
        {"ALERTMANAGER_CONFIG_FILE": _non_utf8_alertmanager_config},
        "ALERTMANAGER_CONFIG_FILE: {config} is not UTF-8 text",
    ),
    ({"UPSTREAM_TIMEOUT_SECONDS": "nan"}, "UPSTREAM_TIMEOUT_SECONDS: 'nan' is not a number"),
    ({"UPSTREAM_TIMEOUT_SECONDS": "inf"}, "UPSTREAM_TIMEOUT_SECONDS: 'inf' is not a number"),
    ({"UPSTREAM_TIMEOUT_SECONDS": "1e9"}, "UPSTREAM_TIMEOUT_SECONDS: '1e9' is not a number"),
    (
        {"UPSTREAM_TIMEOUT_SECONDS": "99999"},
        "UPSTREAM_TIMEOUT_SECONDS: '99999' is too large (at most 3600)",
    ),
    ({"MAX_INFLIGHT_PER_TARGET": "١٢"}, "MAX_INFLIGHT_PER_TARGET: '١٢' is not a whole number"),
    ({"PROXY_PORT": "١٢٣٤٥"}, "PROXY_PORT: '١٢٣٤٥' is not a port number (1-65535)"),
    ({"PROXY_PORT": "²"}, "PROXY_PORT: '²' is not a port number (1-65535)"),
    ({"PROXY_HOST": "not.a.host.invalid"}, "PROXY_HOST: 'not.a.host.invalid' does not resolve"),
    ({"PROXY_HOST": "bad host!"}, "PROXY_HOST: 'bad host!' is not an IP address or a host name"),
    ({"SCRAPE_BODY_SIZE_LIMIT": "lots"}, "SCRAPE_BODY_SIZE_LIMIT: 'LOTS' is not a size"),
    ({"SCRAPE_SAMPLE_LIMIT": "0"}, "SCRAPE_SAMPLE_LIMIT: must be greater than 0"),
    ({"DATA_DIR": "~nosuchuser/aqua"}, "DATA_DIR: ~nosuchuser/aqua: cannot expand ~"),
    (
        {"TARGET": LOCAL_TARGET, "OCI_AUTH": "api_key", "OCI_CONFIG_FILE": "~nosuchuser/config"},
        "OCI_CONFIG_FILE: ~nosuchuser/config: cannot expand ~",
    ),
    (
        {"TARGET": LOCAL_TARGET, "OCI_AUTH": "api_key", "OCI_CONFIG_FILE": _non_utf8_config},
        "OCI_CONFIG_FILE: {config} is not UTF-8 text",
    ),
    (
        {"PROMETHEUS_BASIC_AUTH_PASSWORD__FILE": "~nosuchuser/pw"},
        "PROMETHEUS_BASIC_AUTH_PASSWORD__FILE: ~nosuchuser/pw: cannot expand ~",
    ),
]


def _materialise(settings: dict, folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    env, names = {}, {}
    for name, value in settings.items():
        if callable(value):
            path = value(folder)
            env[name] = str(path)
            names["config"] = str(path)
        else:
            env[name] = value
    return env, names


def _run(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",
    )


@pytest.mark.parametrize("command", ["check", "proxy", "start"])
@pytest.mark.parametrize(("settings", "expected"), BAD_VALUES)
def test_odd_values_stop_every_command_in_one_line(command, settings, expected, tmp_path):
    data_dir = short_tmp_dir()
    extra, names = _materialise(settings, tmp_path)
    port = free_port()
    env = base_environment(
        {"DATA_DIR": str(data_dir), "PROXY_PORT": str(port), "HOME": str(tmp_path), **extra}
    )
    result = _run(command, env)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith(
        "aqua-metrics: " + expected.format(**names)
    ), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not (data_dir / "runtime").exists(), "nothing may be prepared on bad input"


def test_good_edge_values_are_accepted(tmp_path):
    settings = load_settings(
        {
            "DATA_DIR": str(tmp_path),
            "PROXY_HOST": "localhost",
            "UPSTREAM_TIMEOUT_SECONDS": ".5",
            "UPSTREAM_CONNECT_TIMEOUT_SECONDS": "2.",
            "SCRAPE_BODY_SIZE_LIMIT": "512kb",
            "SCRAPE_SAMPLE_LIMIT": "2000",
        }
    )
    assert settings.proxy.host == "localhost"
    assert settings.proxy.upstream_timeout_seconds == 0.5
    assert settings.proxy.connect_timeout_seconds == 2.0
    assert settings.scrape_body_size_limit == 512 * 1024
    assert settings.scrape_sample_limit == 2000


@pytest.mark.parametrize("command", ["start", "proxy"])
def test_a_host_that_is_not_ours_is_not_called_a_port_in_use(command):
    """192.0.2.1 (TEST-NET-1) is a valid address but none of this machine's: binding it fails
    with EADDRNOTAVAIL. Nothing is sent anywhere: the command only tries to bind."""
    port = free_port()
    env = base_environment(
        {"DATA_DIR": str(short_tmp_dir()), "PROXY_HOST": "192.0.2.1", "PROXY_PORT": str(port)}
    )
    result = _run(command, env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        f"aqua-metrics: PROXY_HOST: cannot listen on 192.0.2.1:{port}: "
        "not an address of this machine"
    ], result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("command", ["start", "proxy"])
def test_a_proxy_port_in_use_is_one_line(command):
    """A port another program listens on (held open here): one line naming PROXY_PORT, exit 2,
    the same for `proxy` as for `start` (not uvicorn's log lines and its exit 3)."""
    with socket.create_server(("127.0.0.1", 0)) as holder:
        port = holder.getsockname()[1]
        env = base_environment({"DATA_DIR": str(short_tmp_dir()), "PROXY_PORT": str(port)})
        result = _run(command, env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        f"aqua-metrics: PROXY_PORT: 127.0.0.1:{port} is already in use"
    ], result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("command", ["check", "start"])
def test_a_session_token_that_is_not_text_is_one_line(command, tmp_path):
    from testkit.oci_credentials import TokenIssuer, make_security_token_profile

    creds = make_security_token_profile(tmp_path, TokenIssuer())
    creds.token_path.write_bytes(b"\xff\xfe\x00token")
    env = base_environment(
        {
            "DATA_DIR": str(short_tmp_dir()),
            "HOME": str(tmp_path),
            "TARGET": LOCAL_TARGET,
            "OCI_AUTH": "security_token",
            "OCI_CONFIG_FILE": str(creds.config_path),
            "OCI_CONFIG_PROFILE": creds.profile,
        }
    )
    result = _run(command, env)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith(f"{creds.token_path} is not UTF-8 text"), lines
    assert "Traceback" not in result.stdout + result.stderr
