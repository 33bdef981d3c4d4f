"""Command lines and environments the stack's programs get."""

from __future__ import annotations

from pathlib import Path

from app.settings import load_settings
from app.stack.binaries import GrafanaInstall
from app.stack.components import grafana_argv, grafana_environment, prometheus_argv
from app.stack.layout import DataLayout
from app.stack.runtime import ensure_secret


def test_prometheus_flags_follow_settings(tmp_path):
    settings = load_settings(
        {
            "DATA_DIR": str(tmp_path),
            "PROMETHEUS_RETENTION_TIME": "30d",
            "PROMETHEUS_RETENTION_SIZE": "512mb",
        }
    )
    argv = prometheus_argv(Path("/bin/prometheus"), settings, DataLayout(tmp_path))
    assert argv[0] == "/bin/prometheus"
    assert f"--storage.tsdb.path={tmp_path / 'prometheus'}" in argv
    assert "--storage.tsdb.retention.time=30d" in argv
    assert "--storage.tsdb.retention.size=512MB" in argv
    assert "--web.listen-address=127.0.0.1:9090" in argv
    assert "--auto-gomemlimit.ratio=0.5" in argv
    assert not any(flag.startswith("--web.config.file") for flag in argv)
    assert not any("lifecycle" in flag or "admin-api" in flag for flag in argv)


def _grafana_env(tmp_path, **settings):
    layout = DataLayout(tmp_path)
    ensure_secret(layout.grafana_metrics_password)
    loaded = load_settings({"DATA_DIR": str(tmp_path), **settings})
    return grafana_environment(
        loaded, layout, {"GF_SOMETHING_ELSE": "kept", "GF_SECURITY_ADMIN_PASSWORD": "from-base"}
    ), layout


def test_grafana_is_air_gapped_private_and_provisioned(tmp_path):
    env, layout = _grafana_env(tmp_path)
    for name, value in {
        "GF_ANALYTICS_REPORTING_ENABLED": "false",
        "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
        "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES": "false",
        "GF_NEWS_NEWS_FEED_ENABLED": "false",
        "GF_PLUGINS_PREINSTALL_DISABLED": "true",
        "GF_PLUGINS_PUBLIC_KEY_RETRIEVAL_DISABLED": "true",
        "GF_PLUGINS_PLUGIN_ADMIN_ENABLED": "false",
        "GF_SECURITY_DISABLE_GRAVATAR": "true",
        "GF_SNAPSHOTS_EXTERNAL_ENABLED": "false",
        "GF_USERS_ALLOW_SIGN_UP": "false",
        "GF_AUTH_ANONYMOUS_ENABLED": "false",
        "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer",
    }.items():
        assert env[name] == value, name
    assert env["GF_PATHS_PROVISIONING"] == str(layout.runtime / "grafana-provisioning")
    assert env["GF_PATHS_DATA"] == str(layout.grafana_data)
    assert Path(env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]).is_file()
    assert env["GF_SERVER_HTTP_PORT"] == "3000"
    # Datasource provisioning reads these; empty values would break Grafana's bool parsing.
    assert env["PROMETHEUS_PORT"] == "9090" and env["SCRAPE_INTERVAL"] == "15s"
    assert env["AQUA_PROMETHEUS_BASIC_AUTH"] == "false"
    assert env["GF_SOMETHING_ELSE"] == "kept"
    # No password given: ours, from a 0600 file, never admin/admin.
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == f"$__file{{{layout.grafana_admin_password}}}"
    assert "GF_SECURITY_ADMIN_PASSWORD__FILE" not in env


def test_grafana_anonymous_access_is_viewer_only_and_admin_password_is_the_users(tmp_path):
    env, _ = _grafana_env(
        tmp_path, GRAFANA_ANONYMOUS_VIEWER="true", GF_SECURITY_ADMIN_PASSWORD="chosen"
    )
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == "chosen"
    assert "GF_SECURITY_ADMIN_PASSWORD__FILE" not in env


def test_grafana_datasource_gets_basic_auth_when_prometheus_is_exposed(tmp_path):
    env, _ = _grafana_env(tmp_path, PROMETHEUS_EXPOSE="true", PROMETHEUS_BASIC_AUTH_PASSWORD="pw")
    assert env["AQUA_PROMETHEUS_BASIC_AUTH"] == "true"
    assert env["AQUA_PROMETHEUS_BASIC_AUTH_USER"] == "prometheus"
    assert env["AQUA_PROMETHEUS_BASIC_AUTH_PASSWORD"] == "pw"


def test_grafana_command_line():
    install = GrafanaInstall(
        binary=Path("/usr/share/grafana/bin/grafana"), home=Path("/usr/share/grafana")
    )
    assert grafana_argv(install) == [
        "/usr/share/grafana/bin/grafana",
        "server",
        "--homepath=/usr/share/grafana",
    ]
