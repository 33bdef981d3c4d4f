"""Command lines and environments for the programs supervisord runs.

`aqua-metrics run prometheus|alertmanager|grafana` builds them from the validated settings and
execs the program, so supervisord.conf stays short and every flag is typed, tested Python.
"""

from __future__ import annotations

import os
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from app.settings import Settings
from app.stack import central, files
from app.stack.binaries import GrafanaInstall
from app.stack.layout import DataLayout
from app.stack.runtime import GRAFANA_METRICS_USER

# Prometheus 3 sizes GOMEMLIMIT from the cgroup limit as if it owned the container; it shares
# this one with Grafana and the proxy.
PROMETHEUS_GOMEMLIMIT_RATIO = "0.5"


def prometheus_argv(binary: Path, settings: Settings, layout: DataLayout) -> list[str]:
    prometheus = settings.prometheus
    argv = [
        str(binary),
        f"--config.file={layout.prometheus_config}",
        *central.prometheus_storage_flags(settings, layout),
        f"--web.listen-address={prometheus.listen_host}:{prometheus.port}",
        f"--auto-gomemlimit.ratio={PROMETHEUS_GOMEMLIMIT_RATIO}",
        f"--log.level={'debug' if settings.proxy.log_level == 'debug' else 'info'}",
    ]
    if prometheus.expose:
        argv.append(f"--web.config.file={layout.prometheus_web_config}")
    return argv


# How often Alertmanager writes silences and its notification log to DATA_DIR (and on shutdown).
# Upstream's 15m would let a kill -9 forget a quarter hour: a restart would then re-send
# notifications already sent and lose fresh silences. The files are small, so write them often.
ALERTMANAGER_SNAPSHOT_INTERVAL = "15s"


def alertmanager_argv(binary: Path, settings: Settings, layout: DataLayout) -> list[str]:
    return [
        str(binary),
        f"--config.file={layout.alertmanager_config}",
        f"--storage.path={layout.alertmanager_data}",
        f"--web.listen-address=127.0.0.1:{settings.alerting.port}",
        # One Alertmanager, no high-availability gossip: nothing listens on 9094.
        "--cluster.listen-address=",
        f"--data.maintenance-interval={ALERTMANAGER_SNAPSHOT_INTERVAL}",
        f"--log.level={'debug' if settings.proxy.log_level == 'debug' else 'info'}",
    ]


# Grafana settings for air-gapped use and a safe default: nothing phones home, no sign-up, no
# anonymous access unless asked for (and then Viewer only).
_GRAFANA_FIXED = {
    "GF_ANALYTICS_REPORTING_ENABLED": "false",
    "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
    "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES": "false",
    "GF_ANALYTICS_FEEDBACK_LINKS_ENABLED": "false",
    "GF_NEWS_NEWS_FEED_ENABLED": "false",
    "GF_PLUGINS_PREINSTALL_DISABLED": "true",
    # Else Grafana fetches the plugin-signing public keys from grafana.com at start and every 10 days.
    "GF_PLUGINS_PUBLIC_KEY_RETRIEVAL_DISABLED": "true",
    # The plugin catalogue browses and installs from grafana.com: nothing to offer offline.
    "GF_PLUGINS_PLUGIN_ADMIN_ENABLED": "false",
    "GF_SNAPSHOTS_EXTERNAL_ENABLED": "false",
    "GF_SECURITY_DISABLE_GRAVATAR": "true",
    "GF_USERS_ALLOW_SIGN_UP": "false",
    "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer",
    "GF_LOG_MODE": "console",
    "GF_METRICS_ENABLED": "true",
    "GF_METRICS_BASIC_AUTH_USERNAME": GRAFANA_METRICS_USER,
}


def grafana_argv(install: GrafanaInstall) -> list[str]:
    return [str(install.binary), "server", f"--homepath={install.home}"]


def grafana_environment(
    settings: Settings, layout: DataLayout, base: Mapping[str, str]
) -> dict[str, str]:
    """The environment Grafana runs with: ours for paths and security, the user's GF_* otherwise."""
    env = dict(base)
    grafana = settings.grafana
    for name, value in _GRAFANA_FIXED.items():
        env[name] = value
    env.update(
        {
            "GF_PATHS_DATA": str(layout.grafana_data),
            "GF_PATHS_LOGS": str(layout.grafana_data / "logs"),
            "GF_PATHS_PLUGINS": str(layout.grafana_data / "plugins"),
            "GF_PATHS_PROVISIONING": str(central.grafana_provisioning_dir(layout)),
            "GF_SERVER_HTTP_PORT": str(grafana.port),
            "GF_AUTH_ANONYMOUS_ENABLED": "true" if grafana.anonymous_viewer else "false",
            "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH": str(files.home_dashboard()),
            "GF_METRICS_BASIC_AUTH_PASSWORD": layout.grafana_metrics_password.read_text(
                encoding="utf-8"
            ).strip(),
            # Read by the datasource provisioning file.
            "PROMETHEUS_PORT": str(settings.prometheus.port),
            "ALERTMANAGER_PORT": str(settings.alerting.port),
            "SCRAPE_INTERVAL": settings.scrape_interval,
            "AQUA_PROMETHEUS_BASIC_AUTH": "true" if settings.prometheus.expose else "false",
            "AQUA_PROMETHEUS_BASIC_AUTH_USER": settings.prometheus.basic_auth_user
            if settings.prometheus.expose
            else "",
            "AQUA_PROMETHEUS_BASIC_AUTH_PASSWORD": settings.prometheus.basic_auth_password.value
            if settings.prometheus.expose and settings.prometheus.basic_auth_password
            else "",
        }
    )
    env.update(central.datasource_environment(settings))
    # The admin password applies when Grafana creates its database: the user's, else ours.
    # The Grafana binary only reads GF_<SECTION>_<KEY>; the `<NAME>__FILE` convention belongs to the
    # official image's entrypoint (run.sh), which we do not use. Grafana itself expands
    # `$__file{path}` in any value, so the generated password never enters the environment.
    env.pop("GF_SECURITY_ADMIN_PASSWORD__FILE", None)
    if grafana.admin_password is None:
        env["GF_SECURITY_ADMIN_PASSWORD"] = f"$__file{{{layout.grafana_admin_password}}}"
    else:
        env["GF_SECURITY_ADMIN_PASSWORD"] = grafana.admin_password.value
    return env


PROXY_WAIT_SECONDS = 20.0


def wait_for_proxy(settings: Settings, timeout: float = PROXY_WAIT_SECONDS) -> bool:
    """Poll the proxy's /healthz until it answers (True) or `timeout` passes (False)."""
    url = f"http://{settings.proxy.advertised_address}/healthz"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1.0):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def exec_program(argv: list[str], env: Mapping[str, str] | None = None) -> None:
    """Replace this process with the program, so supervisord signals it directly."""
    os.execve(argv[0], argv, dict(os.environ if env is None else env))  # noqa: S606
