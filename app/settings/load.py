"""`load_settings`: the whole configuration, every section read and checked, once.

`check`, `proxy` and `start` all call it, so a problem reads the same everywhere; every problem of
every section is collected before one SettingsError lists them all.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from app.oci_config import AuthMode, resolve_auth
from app.settings.alerting import TOPIC_OCID, AlertingSettings, read_alerting
from app.settings.central import CentralSettings, collector_region, read_central
from app.settings.discovery import read_discovery
from app.settings.grafana import GrafanaSettings, read_grafana
from app.settings.monitoring import OciMonitoringSettings, read_oci_monitoring
from app.settings.prometheus import PrometheusSettings, read_prometheus
from app.settings.proxy import ProxySettings, read_proxy
from app.settings.reader import MAX_BODY_BYTES, SettingsError, _Reader
from app.targets import TargetError, is_loopback_host, parse_targets


@dataclass(frozen=True)
class Settings:
    proxy: ProxySettings
    prometheus: PrometheusSettings
    grafana: GrafanaSettings
    data_dir: Path
    scrape_interval: str
    scrape_timeout: str
    central: CentralSettings
    # Per scrape: the largest uncompressed page (bytes; the proxy and Prometheus both enforce it)
    # and the most samples Prometheus accepts from one page.
    scrape_body_size_limit: int = 64 * 1024 * 1024
    scrape_sample_limit: int = 100_000
    oci_monitoring: OciMonitoringSettings = field(default_factory=OciMonitoringSettings)
    alerting: AlertingSettings = field(default_factory=AlertingSettings)


def default_data_dir(environ: Mapping[str, str]) -> str:
    """`/data` in the image; for a local run, a folder in the user's data home."""
    if Path("/.dockerenv").exists() or environ.get("AQUA_METRICS_IN_IMAGE") == "1":
        return "/data"
    base = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "aqua-metrics")


def _is_loopback_url(url: str) -> bool:
    return is_loopback_host(urlsplit(url).hostname or "")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Parse and validate the whole configuration; raise SettingsError listing every problem."""
    env = os.environ if environ is None else environ
    read = _Reader(env)

    try:
        targets = parse_targets(env.get("TARGET"), env.get("TARGETS"))
    except TargetError as exc:
        read.problems.append(str(exc))
        targets = ()

    discovering = read.optional("OCI_COMPARTMENT_ID") is not None
    # A valid topic means signing even with the demo; an invalid one is reported once, below.
    publishing = TOPIC_OCID.match(read.optional("OCI_NOTIFICATION_TOPIC_ID") or "") is not None
    auth_mode = read.choice("OCI_AUTH", "auto", tuple(mode.value for mode in AuthMode))
    config_file = read.text("OCI_CONFIG_FILE", "~/.oci/config")
    profile = read.text("OCI_CONFIG_PROFILE", "DEFAULT")
    auth = resolve_auth(
        AuthMode(auth_mode),
        has_targets=bool(targets) or discovering or publishing,
        config_file=config_file,
        profile=profile,
        environ=env,
        problems=read.problems,
        all_loopback=bool(targets)
        and not discovering
        and not publishing
        and all(_is_loopback_url(t.url) for t in targets),
    )
    discovery = read_discovery(read, auth)

    scrape_interval, interval_seconds = read.duration("SCRAPE_INTERVAL", "15s")
    default_timeout = "10s" if interval_seconds >= 10 else scrape_interval
    scrape_timeout, timeout_seconds = read.duration("SCRAPE_TIMEOUT", default_timeout)
    if timeout_seconds > interval_seconds:
        read.problems.append(
            f"SCRAPE_TIMEOUT: {scrape_timeout} is longer than SCRAPE_INTERVAL {scrape_interval}"
        )

    proxy = read_proxy(read, targets, auth, discovery, interval_seconds)
    prometheus = read_prometheus(read)
    grafana = read_grafana(read, env)
    alerting = read_alerting(read, proxy.host)
    if publishing and auth.mode is AuthMode.NONE:
        read.problems.append(
            "OCI_NOTIFICATION_TOPIC_ID: publishing needs OCI credentials; OCI_AUTH is none"
        )

    ports = {
        "PROXY_PORT": proxy.port,
        "PROMETHEUS_PORT": prometheus.port,
        "GRAFANA_PORT": grafana.port,
        "ALERTMANAGER_PORT": alerting.port,
    }
    by_port: dict[int, str] = {}
    for name, number in ports.items():
        if number in by_port:
            read.problems.append(f"{name}: port {number} is already used by {by_port[number]}")
        by_port[number] = name

    body_size_limit = read.size("SCRAPE_BODY_SIZE_LIMIT", "64MB", maximum=MAX_BODY_BYTES)
    sample_limit = int(
        read.positive_number("SCRAPE_SAMPLE_LIMIT", 100_000, integer=True, maximum=100_000_000)
    )

    data_dir = read.path("DATA_DIR", default_data_dir(env))
    oci_monitoring = read_oci_monitoring(read, auth.mode is not AuthMode.NONE)
    central = read_central(read, collector_region(env, targets, discovery, auth))

    if read.problems:
        raise SettingsError(*read.problems)
    return Settings(
        proxy=proxy,
        prometheus=prometheus,
        grafana=grafana,
        data_dir=data_dir,
        scrape_interval=scrape_interval,
        scrape_timeout=scrape_timeout,
        oci_monitoring=oci_monitoring,
        alerting=alerting,
        central=central,
        scrape_body_size_limit=body_size_limit,
        scrape_sample_limit=sample_limit,
    )
