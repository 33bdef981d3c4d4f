"""Renders what the processes need into DATA_DIR: Prometheus' and Alertmanager's configs, secrets.

The top-level prometheus.yml is the template: we load it, point its addresses at the configured
ports, set intervals and credentials, and write the result to runtime/. Nothing is templated by
string substitution, so the committed file stays a valid config that promtool checks in CI.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import yaml

from app.alerts.config import render_alertmanager_config
from app.settings import BasicAuthLogin, Settings, SettingsError, parse_duration
from app.stack import central, files
from app.stack.layout import DataLayout

GRAFANA_METRICS_USER = "prometheus"


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (secrets, and configs that reference them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    path.chmod(0o600)


def ensure_secret(path: Path) -> tuple[str, bool]:
    """Read a generated secret, creating it on first use. Returns (value, created)."""
    if path.is_file():
        return path.read_text(encoding="utf-8").strip(), False
    value = secrets.token_urlsafe(18)
    write_private(path, value + "\n")
    return value, True


def prepare_directories(layout: DataLayout) -> None:
    for folder in (
        layout.prometheus_data,
        layout.grafana_data,
        layout.alertmanager_data,
        layout.runtime,
    ):
        folder.mkdir(parents=True, exist_ok=True)
    layout.secrets.mkdir(parents=True, exist_ok=True)
    layout.secrets.chmod(0o700)
    layout.fatal_marker.unlink(missing_ok=True)


def sd_refresh_interval(settings: Settings, template: str) -> str:
    """How often Prometheus re-reads /sd: the template's interval, or DISCOVERY_INTERVAL when
    that is shorter, so a deployment found by a listing is scraped within one discovery interval
    plus one refresh."""
    discovery = settings.proxy.discovery
    if discovery is None:
        return template
    template_seconds = parse_duration(template) or float("inf")
    return discovery.interval if discovery.interval_seconds < template_seconds else template


def render_prometheus_config(
    settings: Settings, layout: DataLayout, *, grafana_enabled: bool
) -> dict[str, Any]:
    """The runtime Prometheus config, built from the top-level template."""
    config: dict[str, Any] = yaml.safe_load(files.prometheus_template().read_text(encoding="utf-8"))
    proxy_address = settings.proxy.advertised_address
    prometheus_address = f"127.0.0.1:{settings.prometheus.port}"
    config["global"]["scrape_interval"] = settings.scrape_interval
    config["global"]["scrape_timeout"] = settings.scrape_timeout
    config["global"]["evaluation_interval"] = settings.scrape_interval
    config["rule_files"] = [str(files.rules_dir() / "*.yml")]
    alertmanager_address = f"127.0.0.1:{settings.alerting.port}"
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [alertmanager_address]
    jobs = []
    for job in config["scrape_configs"]:
        name = job["job_name"]
        if name in ("vllm", "aqua-proxy"):
            job["body_size_limit"] = f"{settings.scrape_body_size_limit}B"
            job["sample_limit"] = settings.scrape_sample_limit
        if name == "vllm":
            sd = job["http_sd_configs"][0]
            sd["url"] = f"http://{proxy_address}/sd"
            sd["refresh_interval"] = sd_refresh_interval(settings, sd["refresh_interval"])
        elif name in ("aqua-proxy", "oci-monitoring"):
            job["static_configs"][0]["targets"] = [proxy_address]
        elif name == "prometheus":
            job["static_configs"][0]["targets"] = [prometheus_address]
            if settings.prometheus.expose:
                job["basic_auth"] = {
                    "username": settings.prometheus.basic_auth_user,
                    "password_file": str(layout.prometheus_password),
                }
        elif name == "alertmanager":
            job["static_configs"][0]["targets"] = [alertmanager_address]
        elif name == "grafana":
            if not grafana_enabled:
                continue
            job["static_configs"][0]["targets"] = [f"127.0.0.1:{settings.grafana.port}"]
            job["basic_auth"] = {
                "username": GRAFANA_METRICS_USER,
                "password_file": str(layout.grafana_metrics_password),
            }
        jobs.append(job)
    config["scrape_configs"] = jobs
    central.apply_to_prometheus_config(config, settings, layout)
    return config


def render_web_config(settings: Settings) -> dict[str, Any]:
    """Prometheus --web.config.file: basic auth with a bcrypt hash, used when it is exposed."""
    import bcrypt

    login = _exposed_login(settings)
    hashed = bcrypt.hashpw(login.password.value.encode(), bcrypt.gensalt(rounds=10)).decode()
    return {"basic_auth_users": {login.user: hashed}}


def _exposed_login(settings: Settings) -> BasicAuthLogin:
    login = settings.prometheus.login
    if login is None:
        raise SettingsError(
            "PROMETHEUS_EXPOSE: an exposed Prometheus needs PROMETHEUS_BASIC_AUTH_PASSWORD"
        )
    return login


def write_runtime_files(settings: Settings, layout: DataLayout, *, grafana_enabled: bool) -> None:
    prometheus_config = render_prometheus_config(settings, layout, grafana_enabled=grafana_enabled)
    write_private(layout.prometheus_config, yaml.safe_dump(prometheus_config, sort_keys=False))
    if settings.prometheus.expose:
        write_private(layout.prometheus_password, _exposed_login(settings).password.value + "\n")
        write_private(layout.prometheus_web_config, yaml.safe_dump(render_web_config(settings)))
    else:
        layout.prometheus_web_config.unlink(missing_ok=True)
        layout.prometheus_password.unlink(missing_ok=True)
    if grafana_enabled:
        ensure_secret(layout.grafana_metrics_password)
        central.render_grafana_provisioning(settings, layout)
    for path, secret in central.remote_write_secret_files(settings, layout).items():
        if secret is None:
            path.unlink(missing_ok=True)
        else:
            write_private(path, secret)
    write_private(layout.alertmanager_config, render_alertmanager_text(settings))


def render_alertmanager_text(settings: Settings) -> str:
    """The user's ALERTMANAGER_CONFIG_FILE as it is, else the configuration generated from the
    settings. Written 0600: it holds webhook URLs and passwords."""
    alerting = settings.alerting
    if alerting.config_text is not None:
        return alerting.config_text.value
    config = render_alertmanager_config(alerting, settings.proxy.advertised_address)
    return yaml.safe_dump(config, sort_keys=False)
