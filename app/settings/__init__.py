"""The one reader of the environment: every setting is parsed and validated here, once.

One module a section, each with its settings' types and the function that reads them:
`reader` (typed values, problems, secrets), `proxy`, `demo`, `discovery`, `prometheus`, `grafana`,
`alerting`, `monitoring` (OCI Monitoring), `central` (remote_write, agent mode, Grafana's
datasource), and `load` (`load_settings`, which calls every section). Import from here.
"""

from app.errors import ConfigError
from app.settings.alerting import AlertingSettings, EmailReceiver
from app.settings.central import (
    RESERVED_REMOTE_WRITE_HEADERS,
    CentralSettings,
    GrafanaDatasourceSettings,
    HttpAuth,
    RemoteWriteSettings,
    collector_region,
    default_monitor_name,
)
from app.settings.discovery import (
    MIN_DISCOVERY_INTERVAL_SECONDS,
    RESOURCE_PRINCIPAL_REGION_ENV,
    DiscoverySettings,
)
from app.settings.grafana import GrafanaSettings
from app.settings.load import Settings, default_data_dir, load_settings
from app.settings.monitoring import OciMonitoringSettings
from app.settings.prometheus import BasicAuthLogin, PrometheusSettings
from app.settings.proxy import ProxySettings
from app.settings.reader import (
    MAX_BODY_BYTES,
    MAX_TIMEOUT_SECONDS,
    Secret,
    SettingsError,
    _Reader,
    host_problem,
    parse_duration,
    parse_size,
)

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_TIMEOUT_SECONDS",
    "MIN_DISCOVERY_INTERVAL_SECONDS",
    "RESERVED_REMOTE_WRITE_HEADERS",
    "RESOURCE_PRINCIPAL_REGION_ENV",
    "AlertingSettings",
    "BasicAuthLogin",
    "CentralSettings",
    "ConfigError",
    "DiscoverySettings",
    "EmailReceiver",
    "GrafanaDatasourceSettings",
    "GrafanaSettings",
    "HttpAuth",
    "OciMonitoringSettings",
    "PrometheusSettings",
    "ProxySettings",
    "RemoteWriteSettings",
    "Secret",
    "Settings",
    "SettingsError",
    "_Reader",
    "collector_region",
    "default_data_dir",
    "default_monitor_name",
    "host_problem",
    "load_settings",
    "parse_duration",
    "parse_size",
]
