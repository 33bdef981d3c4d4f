"""What `start` renders for a central store: remote_write, agent mode, Grafana's datasource.

The rendered Prometheus configs are checked by the real promtool (`--agent` for agent mode); the
rendered datasource file is read the way Grafana reads provisioning files (the interpolation and
the documented key sets of tests/test_grafana_provisioning.py).
"""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import yaml

from app.settings import load_settings
from app.stack import central, files
from app.stack.components import grafana_environment, prometheus_argv
from app.stack.layout import DataLayout
from app.stack.runtime import prepare_directories, write_runtime_files
from testkit.stack import base_environment, run_start, short_tmp_dir
from tests.support.fake_grafana import install_fake_grafana
from tests.test_grafana_provisioning import (
    DATASOURCE_KEYS,
    PROMETHEUS_JSON_DATA_KEYS,
    SECURE_JSON_DATA_KEYS,
    interpolate,
)

WRITE_URL = "https://mimir.example.invalid/api/v1/push"
READ_URL = "https://mimir.example.invalid/prometheus"
# Custom HTTP headers of a data source: jsonData.httpHeaderName<n> + secureJsonData.httpHeaderValue<n>
# (https://grafana.com/docs/grafana/latest/administration/provisioning/#custom-http-headers-for-data-sources).
HEADER_KEYS = {f"httpHeaderName{n}" for n in range(1, 6)}
HEADER_VALUE_KEYS = {f"httpHeaderValue{n}" for n in range(1, 6)}


def render(tmp_path: Path, **env: str):
    settings = load_settings({"DATA_DIR": str(tmp_path), **env})
    layout = DataLayout(tmp_path)
    prepare_directories(layout)
    write_runtime_files(settings, layout, grafana_enabled=True)
    return settings, layout


def promtool_check(promtool_path, config: Path, *, agent: bool = False):
    argv = [str(promtool_path), "check", "config", *(["--agent"] if agent else []), str(config)]
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def test_server_mode_writes_remotely_with_a_token_file_never_the_token(promtool_path, tmp_path):
    settings, layout = render(
        tmp_path,
        REMOTE_WRITE_URL=WRITE_URL,
        REMOTE_WRITE_BEARER_TOKEN="tok-secret-1",
        REMOTE_WRITE_HEADERS="X-Scope-OrgID=tenant-a",
        MONITOR_NAME="fra-1",
    )
    result = promtool_check(promtool_path, layout.prometheus_config)
    assert result.returncode == 0, result.stdout + result.stderr
    text = layout.prometheus_config.read_text()
    assert "tok-secret-1" not in text
    config = yaml.safe_load(text)
    assert config["global"]["external_labels"] == {"aqua_monitor": "fra-1"}
    assert config["rule_files"]  # server mode keeps its rules
    (remote,) = config["remote_write"]
    assert remote["url"] == WRITE_URL
    assert remote["headers"] == {"X-Scope-OrgID": "tenant-a"}
    token_file = Path(remote["authorization"]["credentials_file"])
    assert token_file.read_text() == "tok-secret-1\n"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.parent == layout.secrets
    assert remote["queue_config"]["max_backoff"] == "5s"
    assert "sample_age_limit" not in remote["queue_config"]  # never drop a backlog for its age
    argv = prometheus_argv(Path("/bin/prometheus"), settings, layout)
    assert "--agent" not in argv and f"--storage.tsdb.path={layout.prometheus_data}" in argv


def test_agent_mode_config_is_what_an_agent_accepts(promtool_path, tmp_path):
    settings, layout = render(
        tmp_path,
        PROMETHEUS_MODE="agent",
        REMOTE_WRITE_URL="http://127.0.0.1:8428/api/v1/write",
        REMOTE_WRITE_BASIC_AUTH_USER="writer",
        REMOTE_WRITE_BASIC_AUTH_PASSWORD="pw-secret-2",
        GRAFANA_DATASOURCE_URL=READ_URL,
    )
    result = promtool_check(promtool_path, layout.prometheus_config, agent=True)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(layout.prometheus_config.read_text())
    assert "rule_files" not in config and "alerting" not in config
    (remote,) = config["remote_write"]
    assert remote["basic_auth"]["username"] == "writer"
    assert Path(remote["basic_auth"]["password_file"]).read_text() == "pw-secret-2\n"
    assert "pw-secret-2" not in layout.prometheus_config.read_text()
    argv = prometheus_argv(Path("/bin/prometheus"), settings, layout)
    assert "--agent" in argv
    assert f"--storage.agent.path={tmp_path / 'prometheus-agent'}" in argv
    assert not any(flag.startswith("--storage.tsdb") for flag in argv)


def test_a_credential_dropped_from_the_settings_leaves_no_file_behind(tmp_path):
    _, layout = render(tmp_path, REMOTE_WRITE_URL=WRITE_URL, REMOTE_WRITE_BEARER_TOKEN="t")
    assert central.remote_write_token_file(layout).exists()
    render(tmp_path)
    assert not central.remote_write_token_file(layout).exists()
    assert "remote_write" not in yaml.safe_load(layout.prometheus_config.read_text())


def _grafana_view(settings, layout) -> dict:
    """The rendered datasource file as Grafana reads it, with the environment the stack gives it."""
    env = grafana_environment(settings, layout, {})
    folder = Path(env["GF_PATHS_PROVISIONING"])
    assert folder == layout.runtime / "grafana-provisioning"
    return interpolate(
        yaml.safe_load((folder / "datasources" / "prometheus.yaml").read_text()), env
    )


def test_grafana_datasource_points_at_the_central_store(tmp_path):
    settings, layout = render(
        tmp_path,
        PROMETHEUS_MODE="agent",
        REMOTE_WRITE_URL=WRITE_URL,
        GRAFANA_DATASOURCE_URL=READ_URL,
        GRAFANA_DATASOURCE_BEARER_TOKEN="read-secret-3",
        GRAFANA_DATASOURCE_HEADERS="X-Scope-OrgID=tenant-a",
    )
    rendered = layout.runtime / "grafana-provisioning" / "datasources" / "prometheus.yaml"
    assert "read-secret-3" not in rendered.read_text()
    (datasource,) = _grafana_view(settings, layout)["datasources"]
    assert datasource["uid"] == "aqua-prometheus" and datasource["url"] == READ_URL
    assert datasource["basicAuth"] is False
    json_data, secure = datasource["jsonData"], datasource["secureJsonData"]
    assert (json_data["httpHeaderName1"], secure["httpHeaderValue1"]) == (
        "Authorization",
        "Bearer read-secret-3",
    )
    assert (json_data["httpHeaderName2"], secure["httpHeaderValue2"]) == (
        "X-Scope-OrgID",
        "tenant-a",
    )
    assert "prometheusVersion" not in json_data
    assert set(datasource) <= DATASOURCE_KEYS
    assert set(json_data) <= PROMETHEUS_JSON_DATA_KEYS | HEADER_KEYS
    assert set(secure) <= SECURE_JSON_DATA_KEYS | HEADER_VALUE_KEYS


def test_grafana_datasource_basic_auth_and_a_dollar_in_the_url(tmp_path):
    settings, layout = render(
        tmp_path,
        GRAFANA_DATASOURCE_URL="https://vm.example.invalid/select/0/prometheus?x=$HOME",
        GRAFANA_DATASOURCE_BASIC_AUTH_USER="reader",
        GRAFANA_DATASOURCE_BASIC_AUTH_PASSWORD="pw-secret-4",
    )
    (datasource,) = _grafana_view(settings, layout)["datasources"]
    assert datasource["url"] == "https://vm.example.invalid/select/0/prometheus?x=$HOME"
    assert datasource["basicAuth"] is True and datasource["basicAuthUser"] == "reader"
    assert datasource["secureJsonData"] == {"basicAuthPassword": "pw-secret-4"}


def test_without_a_central_datasource_grafana_gets_the_packaged_files(tmp_path):
    _, layout = render(tmp_path)
    folder = layout.runtime / "grafana-provisioning"
    packaged = files.grafana_provisioning_dir()
    assert (folder / "datasources" / "prometheus.yaml").read_text() == (
        packaged / "datasources" / "prometheus.yaml"
    ).read_text()
    # Everything else is the packaged tree itself, so the dashboards provider's path holds.
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in packaged.iterdir())
    assert (folder / "dashboards" / "aqua" / "vllm-deployment.json").is_file()


def test_start_refuses_agent_mode_without_a_datasource_when_grafana_runs(tmp_path):
    grafana = install_fake_grafana(tmp_path / "grafana")
    data_dir = short_tmp_dir()
    env = base_environment(
        {
            "DATA_DIR": str(data_dir),
            "GRAFANA_ENABLED": "true",
            "GRAFANA_BIN": str(grafana),
            "PROMETHEUS_MODE": "agent",
            "REMOTE_WRITE_URL": "http://127.0.0.1:9/api/v1/write",
        }
    )
    result = run_start(env, timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(
        "aqua-metrics: PROMETHEUS_MODE: agent mode keeps no queryable data"
    ), result.stderr
    assert not (data_dir / "runtime" / "prometheus.yml").exists()
