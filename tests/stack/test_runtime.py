"""Runtime files rendered into DATA_DIR: checked by the real promtool, secrets private."""

from __future__ import annotations

import stat
import subprocess

import yaml

from app.settings import load_settings
from app.stack import files
from app.stack.layout import DataLayout
from app.stack.runtime import (
    ensure_secret,
    prepare_directories,
    render_prometheus_config,
    write_runtime_files,
)


def promtool_check(promtool_path, config_path):
    return subprocess.run(
        [str(promtool_path), "check", "config", str(config_path)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_top_level_prometheus_yml_is_valid(promtool_path, repo_root):
    result = promtool_check(promtool_path, repo_root / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rendered_config_is_valid_and_follows_the_settings(promtool_path, tmp_path):
    settings = load_settings(
        {
            "DATA_DIR": str(tmp_path),
            "PROXY_PORT": "18080",
            "PROMETHEUS_PORT": "19090",
            "GRAFANA_PORT": "13000",
            "SCRAPE_INTERVAL": "30s",
        }
    )
    layout = DataLayout(tmp_path)
    prepare_directories(layout)
    write_runtime_files(settings, layout, grafana_enabled=True)
    result = promtool_check(promtool_path, layout.prometheus_config)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(layout.prometheus_config.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["vllm"]["http_sd_configs"][0]["url"] == "http://127.0.0.1:18080/sd"
    assert jobs["vllm"]["fallback_scrape_protocol"] == "PrometheusText0.0.4"
    # A target without a display name (TARGET/TARGETS) is shown under its name.
    assert jobs["vllm"]["relabel_configs"] == [
        {
            "source_labels": ["display_name", "deployment"],
            "regex": ";(.+)",
            "target_label": "display_name",
            "replacement": "$1",
        }
    ]
    assert jobs["aqua-proxy"]["static_configs"][0]["targets"] == ["127.0.0.1:18080"]
    assert jobs["oci-monitoring"]["static_configs"][0]["targets"] == ["127.0.0.1:18080"]
    assert jobs["oci-monitoring"]["metrics_path"] == "/oci-monitoring/metrics"
    assert jobs["prometheus"]["static_configs"][0]["targets"] == ["127.0.0.1:19090"]
    assert jobs["grafana"]["static_configs"][0]["targets"] == ["127.0.0.1:13000"]
    assert jobs["grafana"]["basic_auth"]["password_file"] == str(layout.grafana_metrics_password)
    assert config["global"]["scrape_interval"] == "30s"
    assert config["rule_files"] == [str(files.rules_dir() / "*.yml")]
    assert stat.S_IMODE(layout.prometheus_config.stat().st_mode) == 0o600
    assert stat.S_IMODE(layout.secrets.stat().st_mode) == 0o700
    assert stat.S_IMODE(layout.grafana_metrics_password.stat().st_mode) == 0o600


def test_grafana_job_is_dropped_when_grafana_does_not_run(tmp_path):
    settings = load_settings({"DATA_DIR": str(tmp_path)})
    config = render_prometheus_config(settings, DataLayout(tmp_path), grafana_enabled=False)
    assert "grafana" not in {job["job_name"] for job in config["scrape_configs"]}


def test_exposed_prometheus_gets_a_bcrypt_web_config(promtool_path, tmp_path):
    settings = load_settings(
        {
            "DATA_DIR": str(tmp_path),
            "PROMETHEUS_EXPOSE": "true",
            "PROMETHEUS_BASIC_AUTH_PASSWORD": "pw-for-test",
        }
    )
    layout = DataLayout(tmp_path)
    prepare_directories(layout)
    write_runtime_files(settings, layout, grafana_enabled=False)
    web = yaml.safe_load(layout.prometheus_web_config.read_text())
    hashed = web["basic_auth_users"]["prometheus"]
    assert hashed.startswith("$2") and "pw-for-test" not in layout.prometheus_web_config.read_text()
    result = subprocess.run(
        [str(promtool_path), "check", "web-config", str(layout.prometheus_web_config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(layout.prometheus_config.read_text())
    self_job = next(job for job in config["scrape_configs"] if job["job_name"] == "prometheus")
    assert self_job["basic_auth"]["password_file"] == str(layout.prometheus_password)
    # Turning exposure off again removes the password files.
    plain = load_settings({"DATA_DIR": str(tmp_path)})
    write_runtime_files(plain, layout, grafana_enabled=False)
    assert not layout.prometheus_web_config.exists() and not layout.prometheus_password.exists()


def test_generated_secrets_persist_across_starts(tmp_path):
    path = tmp_path / "secrets" / "s"
    first, created = ensure_secret(path)
    assert created and len(first) >= 20
    again, created_again = ensure_secret(path)
    assert (again, created_again) == (first, False)


def test_runtime_marker_is_cleared_but_user_data_is_kept(tmp_path):
    layout = DataLayout(tmp_path)
    prepare_directories(layout)
    (layout.prometheus_data / "keep").write_text("samples")
    layout.fatal_marker.write_text("proxy")
    prepare_directories(layout)
    assert (layout.prometheus_data / "keep").read_text() == "samples"
    assert not layout.fatal_marker.exists()


def test_long_data_dirs_get_a_short_supervisor_socket(tmp_path):
    long_dir = tmp_path / ("x" * 120)
    socket_path = DataLayout(long_dir).supervisor_socket
    assert len(str(socket_path).encode()) <= 100
    assert DataLayout(long_dir).supervisor_socket == socket_path  # stable
    assert DataLayout(tmp_path / "d").supervisor_socket.parent.name == "runtime"


def test_sd_refresh_follows_a_short_discovery_interval(promtool_path, tmp_path, api_key):
    def refresh(**env):
        settings = load_settings({"DATA_DIR": str(tmp_path), **env})
        config = render_prometheus_config(settings, DataLayout(tmp_path), grafana_enabled=False)
        jobs = {job["job_name"]: job for job in config["scrape_configs"]}
        return jobs["vllm"]["http_sd_configs"][0]["refresh_interval"]

    discovery = {
        "OCI_COMPARTMENT_ID": "ocid1.compartment.oc1..aaaaexample",
        "OCI_CONFIG_FILE": str(api_key.config_path),
    }
    assert refresh() == "30s"
    assert refresh(**discovery) == "30s"  # DISCOVERY_INTERVAL 60s: the template's 30s is shorter
    assert refresh(**discovery, DISCOVERY_INTERVAL="10s") == "10s"
    settings = load_settings({"DATA_DIR": str(tmp_path), **discovery, "DISCOVERY_INTERVAL": "2s"})
    layout = DataLayout(tmp_path)
    prepare_directories(layout)
    write_runtime_files(settings, layout, grafana_enabled=False)
    result = promtool_check(promtool_path, layout.prometheus_config)
    assert result.returncode == 0, result.stdout + result.stderr


def test_scrape_limits_reach_prometheus_per_proxy_job(promtool_path, tmp_path):
    """SCRAPE_BODY_SIZE_LIMIT and SCRAPE_SAMPLE_LIMIT become body_size_limit and sample_limit of
    the jobs fed by the proxy; without them, the documented defaults (64 MiB, 100000)."""
    for env, body, samples in (
        ({}, f"{64 * 1024 * 1024}B", 100_000),
        ({"SCRAPE_BODY_SIZE_LIMIT": "8MB", "SCRAPE_SAMPLE_LIMIT": "2500"}, f"{8 << 20}B", 2500),
    ):
        settings = load_settings({"DATA_DIR": str(tmp_path), **env})
        layout = DataLayout(tmp_path)
        prepare_directories(layout)
        write_runtime_files(settings, layout, grafana_enabled=False)
        result = promtool_check(promtool_path, layout.prometheus_config)
        assert result.returncode == 0, result.stdout + result.stderr
        jobs = {
            job["job_name"]: job
            for job in yaml.safe_load(layout.prometheus_config.read_text())["scrape_configs"]
        }
        for name in ("vllm", "aqua-proxy"):
            assert (jobs[name]["body_size_limit"], jobs[name]["sample_limit"]) == (body, samples)
