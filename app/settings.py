"""The one reader of the environment: every setting is parsed and validated here, once.

`check`, `proxy` and `start` all call `load_settings`, so a problem reads the same everywhere. Each
problem is one line, `SETTING: what is wrong`, and never contains a secret's value. Secrets accept a
`<NAME>__FILE` variant (the Docker/Kubernetes secrets convention) read here and nowhere else.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from app.demo.fleet import (
    DEFAULT_DEMO_DEPLOYMENTS,
    DEFAULT_FIRST_OUTAGE_S,
    MAX_DEMO_DEPLOYMENTS,
    MIN_DEMO_DEPLOYMENTS,
    OutageSchedule,
    demo_targets,
)
from app.discovery.fleet import DiscoveryScope
from app.discovery.listing import (
    ListingConfig,
    compartment_problems,
    endpoint_problem,
    parse_compartments,
)
from app.errors import ConfigError
from app.oci_config import AuthMode, ResolvedAuth, resolve_auth
from app.paths import UnknownHome, expand_home
from app.replicas.gather import MAX_FETCH_CAP
from app.targets import Target, TargetError, is_loopback_host, parse_targets

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$")
# ASCII only: Python's int() and float() also take other scripts' digits ("١٢٣"), "nan", "inf",
# "1_000" and surrounding spaces; a setting accepts none of them.
_WHOLE_NUMBER = re.compile(r"[0-9]+", re.ASCII)
_DECIMAL_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
_HOST_NAME = re.compile(
    r"(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?",
    re.ASCII,
)
_SIZE = re.compile(r"^([0-9]+)(B|KB|MB|GB|TB|PB|EB)$", re.ASCII)
_SIZE_UNITS = ("B", "KB", "MB", "GB", "TB", "PB", "EB")
_BASIC_AUTH_USER = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_REGION = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
RESOURCE_PRINCIPAL_REGION_ENV = "OCI_RESOURCE_PRINCIPAL_REGION"
MIN_DISCOVERY_INTERVAL_SECONDS = 1.0
MAX_TIMEOUT_SECONDS = 3600.0
MAX_BODY_BYTES = 1 << 30  # 1 GiB: a metrics page is far smaller; more is a typo or an attack
# Settings that only mean something with discovery on (set without OCI_COMPARTMENT_ID: a mistake).
_DISCOVERY_ONLY = (
    "OCI_DATA_SCIENCE_ENDPOINT",
    "DISCOVERY_SCOPE",
    "DISCOVERY_PROJECT_ID",
    "DISCOVERY_INTERVAL",
)


class SettingsError(ConfigError):
    """One or more environment variables are unusable; `problems` lists every one of them."""


@dataclass(frozen=True)
class Secret:
    """A value that must never be printed: its repr hides it."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__


@dataclass(frozen=True)
class DiscoverySettings:
    """Fleet discovery, on when OCI_COMPARTMENT_ID is set.

    `region` is None only for instance principals without OCI_REGION: their region comes from the
    instance metadata when the signer is built (see `app.discovery.listing.default_region`).
    """

    compartment_ids: tuple[str, ...]
    region: str | None
    endpoint: str | None
    scope: DiscoveryScope
    project_id: str | None
    interval: str
    interval_seconds: float

    def listing_config(self, region: str) -> ListingConfig:
        return ListingConfig(
            compartment_ids=self.compartment_ids,
            region=region,
            endpoint=self.endpoint,
            project_id=self.project_id,
        )


@dataclass(frozen=True)
class ProxySettings:
    host: str
    port: int
    targets: tuple[Target, ...]  # explicit targets (or the demo); discovery adds to them live
    auth: ResolvedAuth
    upstream_timeout_seconds: float
    connect_timeout_seconds: float
    max_response_bytes: int
    max_inflight_per_target: int
    token_refresh_check_seconds: float
    log_level: str
    discovery: DiscoverySettings | None = None
    # The demo fleet's flaky member goes down on this schedule (DEMO_OUTAGE_AFTER).
    demo_outages: OutageSchedule = field(default_factory=OutageSchedule)
    # Several replicas behind one deployment (issue 11): the tracker's ages follow the interval,
    # and REPLICA_FETCH_CAP bounds the upstream requests of one scrape.
    scrape_interval_seconds: float = 15.0
    replica_fetch_cap: int = MAX_FETCH_CAP
    header_timeout_seconds: float = 10.0  # a client must send its request head within this

    @property
    def advertised_address(self) -> str:
        """host:port at which Prometheus (same container) reaches the proxy."""
        host = "127.0.0.1" if self.host in {"0.0.0.0", "", "::"} else self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class BasicAuthLogin:
    """The basic-auth login that guards an exposed Prometheus."""

    user: str
    password: Secret


@dataclass(frozen=True)
class PrometheusSettings:
    port: int
    expose: bool
    basic_auth_user: str
    basic_auth_password: Secret | None
    retention_time: str
    retention_size: str
    binary: str | None

    @property
    def listen_host(self) -> str:
        return "0.0.0.0" if self.expose else "127.0.0.1"

    @property
    def login(self) -> BasicAuthLogin | None:
        """The login guarding Prometheus when it is exposed (`load_settings` requires the
        password then); None when it listens on loopback only."""
        if not self.expose or self.basic_auth_password is None:
            return None
        return BasicAuthLogin(self.basic_auth_user, self.basic_auth_password)


@dataclass(frozen=True)
class GrafanaSettings:
    port: int
    enabled: str  # auto | true | false
    anonymous_viewer: bool
    admin_password: Secret | None
    home: str | None
    binary: str | None


# --- alerting (Alertmanager and its receivers) -----------------------------------------------------

_TOPIC_OCID = re.compile(r"^ocid1\.onstopic\.[a-z0-9]+\.[a-z0-9-]*\.(?:[a-z0-9-]*\.)?[a-z0-9]+$")
_SMARTHOST = re.compile(r"^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9A-Fa-f:.]+\]:\d{1,5}$")
_EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+$")


@dataclass(frozen=True)
class EmailReceiver:
    to: tuple[str, ...]
    smarthost: str
    sender: str
    username: str | None
    password: Secret | None
    require_tls: bool


@dataclass(frozen=True)
class AlertingSettings:
    """Alertmanager and where alerts go. No receiver at all is valid: alerts stay visible in
    Grafana and Alertmanager, delivered nowhere."""

    port: int = 9093
    binary: str | None = None
    topic_id: str | None = None
    notifications_endpoint: str | None = None
    slack_webhook_url: Secret | None = None
    webhook_url: Secret | None = None
    webhook_bearer_token: Secret | None = None
    email: EmailReceiver | None = None
    config_file: Path | None = None
    config_text: Secret | None = None
    group_wait: str = "30s"
    group_interval: str = "5m"
    repeat_interval: str = "4h"
    grafana_root_url: str | None = None

    @property
    def receivers(self) -> tuple[str, ...]:
        """Names of the configured receivers, in a fixed order (for messages, never secrets)."""
        names = []
        if self.topic_id:
            names.append("oci-notifications")
        if self.slack_webhook_url:
            names.append("slack")
        if self.webhook_url:
            names.append("webhook")
        if self.email:
            names.append("email")
        return tuple(names)

    def secrets(self) -> tuple[str, ...]:
        """Every secret value, so output of other programs can be scrubbed of them."""
        values = [
            secret.value
            for secret in (
                self.slack_webhook_url,
                self.webhook_url,
                self.webhook_bearer_token,
                self.email.password if self.email else None,
            )
            if secret is not None
        ]
        return tuple(values)


def _https_or_loopback(read: _Reader, name: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and is_loopback_host(parts.hostname or ""):
        return
    # Never echo the URL: webhook URLs carry their credentials in the path.
    read.problems.append(f"{name}: must be an https URL (plain http only on a loopback host)")


def _read_email(read: _Reader) -> EmailReceiver | None:
    to = read.optional("ALERT_EMAIL_TO")
    smarthost = read.optional("SMTP_SMARTHOST")
    sender = read.optional("SMTP_FROM")
    username = read.optional("SMTP_USERNAME")
    password = read.secret("SMTP_PASSWORD")
    require_tls = read.boolean("SMTP_REQUIRE_TLS", True)
    if to is None:
        for name, value in (("SMTP_SMARTHOST", smarthost), ("SMTP_FROM", sender)):
            if value is not None:
                read.problems.append(f"{name}: set ALERT_EMAIL_TO too, or leave it unset")
        return None
    addresses = tuple(part.strip() for part in to.split(",") if part.strip())
    if not addresses or not all(_EMAIL.match(address) for address in addresses):
        read.problems.append("ALERT_EMAIL_TO: give e-mail addresses separated by commas")
    if smarthost is None:
        read.problems.append("ALERT_EMAIL_TO: e-mail needs SMTP_SMARTHOST (host:port)")
    elif not _SMARTHOST.match(smarthost):
        read.problems.append(f"SMTP_SMARTHOST: {smarthost!r} is not host:port")
    if sender is None:
        read.problems.append("ALERT_EMAIL_TO: e-mail needs SMTP_FROM (the sender address)")
    elif not _EMAIL.match(sender):
        read.problems.append(f"SMTP_FROM: {sender!r} is not an e-mail address")
    if password is not None and username is None:
        read.problems.append("SMTP_PASSWORD: set SMTP_USERNAME too")
    return EmailReceiver(addresses, smarthost or "", sender or "", username, password, require_tls)


def _read_alerting(read: _Reader, proxy_host: str) -> AlertingSettings:
    """Alertmanager's port, binary, receivers and timing; problems go to `read.problems`."""
    topic = read.optional("OCI_NOTIFICATION_TOPIC_ID")
    if topic is not None and not _TOPIC_OCID.match(topic):
        read.problems.append(
            "OCI_NOTIFICATION_TOPIC_ID: not a Notifications topic OCID (ocid1.onstopic.<realm>...)"
        )
    if topic is not None and proxy_host not in {
        "127.0.0.1",
        "0.0.0.0",
        "",
        "::",
        "::1",
        "localhost",
    }:
        read.problems.append(
            "OCI_NOTIFICATION_TOPIC_ID: Alertmanager hands notifications to the proxy on loopback; "
            "PROXY_HOST must be 127.0.0.1 or 0.0.0.0"
        )
    endpoint = read.optional("OCI_NOTIFICATIONS_ENDPOINT")
    if endpoint is not None:
        _https_or_loopback(read, "OCI_NOTIFICATIONS_ENDPOINT", endpoint)
        if topic is None:
            read.problems.append("OCI_NOTIFICATIONS_ENDPOINT: set OCI_NOTIFICATION_TOPIC_ID too")
    slack = read.secret("ALERT_SLACK_WEBHOOK_URL")
    if slack is not None:
        _https_or_loopback(read, "ALERT_SLACK_WEBHOOK_URL", slack.value)
    webhook = read.secret("ALERT_WEBHOOK_URL")
    if webhook is not None:
        _https_or_loopback(read, "ALERT_WEBHOOK_URL", webhook.value)
    bearer = read.secret("ALERT_WEBHOOK_BEARER_TOKEN")
    if bearer is not None and webhook is None:
        read.problems.append("ALERT_WEBHOOK_BEARER_TOKEN: set ALERT_WEBHOOK_URL too")
    email = _read_email(read)
    group_wait, _ = read.duration("ALERT_GROUP_WAIT", "30s")
    group_interval, _ = read.duration("ALERT_GROUP_INTERVAL", "5m")
    repeat_interval, _ = read.duration("ALERT_REPEAT_INTERVAL", "4h")
    root_url = read.optional("GRAFANA_ROOT_URL")
    if root_url is not None and urlsplit(root_url).scheme not in {"http", "https"}:
        read.problems.append(f"GRAFANA_ROOT_URL: {root_url!r} is not an http(s) URL")
    config_file, config_text = _read_alertmanager_config_file(read)
    if config_file is not None:
        generated_only = {
            "ALERT_SLACK_WEBHOOK_URL": slack,
            "ALERT_WEBHOOK_URL": webhook,
            "ALERT_EMAIL_TO": email,
            "ALERT_GROUP_WAIT": read.optional("ALERT_GROUP_WAIT"),
            "ALERT_GROUP_INTERVAL": read.optional("ALERT_GROUP_INTERVAL"),
            "ALERT_REPEAT_INTERVAL": read.optional("ALERT_REPEAT_INTERVAL"),
        }
        for name, value in generated_only.items():
            if value is not None:
                read.problems.append(
                    f"{name}: ALERTMANAGER_CONFIG_FILE replaces the generated configuration; "
                    "configure this receiver or timing in that file instead"
                )
    return AlertingSettings(
        port=read.port("ALERTMANAGER_PORT", 9093),
        binary=read.optional("ALERTMANAGER_BIN"),
        topic_id=topic,
        notifications_endpoint=endpoint.rstrip("/") if endpoint else None,
        slack_webhook_url=slack,
        webhook_url=webhook,
        webhook_bearer_token=bearer,
        email=email,
        config_file=config_file,
        config_text=config_text,
        group_wait=group_wait,
        group_interval=group_interval,
        repeat_interval=repeat_interval,
        grafana_root_url=root_url.rstrip("/") if root_url else None,
    )


def _read_alertmanager_config_file(read: _Reader) -> tuple[Path | None, Secret | None]:
    raw = read.optional("ALERTMANAGER_CONFIG_FILE")
    if raw is None:
        return None, None
    path = Path(raw).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        read.problems.append(f"ALERTMANAGER_CONFIG_FILE: cannot read {path} ({exc.strerror})")
        return path, None
    if not text.strip():
        read.problems.append(f"ALERTMANAGER_CONFIG_FILE: {path} is empty")
        return path, None
    return path, Secret(text)


@dataclass(frozen=True)
class OciMonitoringSettings:
    """OCI_MONITORING*: read the deployments' OCI Monitoring metrics (see app.monitoring)."""

    mode: str = "false"  # auto | true | false
    interval_seconds: float = 60.0
    endpoint: str | None = None
    compartment_ids: tuple[str, ...] = ()


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


class _Reader:
    """Reads typed values from the environment, collecting problems instead of raising."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []

    def text(self, name: str, default: str) -> str:
        value = self.environ.get(name)
        return default if value is None or value.strip() == "" else value.strip()

    def optional(self, name: str) -> str | None:
        value = self.environ.get(name)
        return value.strip() if value and value.strip() else None

    def secret(self, name: str) -> Secret | None:
        """`NAME` or `NAME__FILE` (a file holding it); both set is a problem."""
        direct = self.environ.get(name)
        file_name = self.environ.get(f"{name}__FILE")
        if direct and file_name:
            self.problems.append(f"{name}: set {name} or {name}__FILE, not both")
            return None
        if file_name:
            try:
                value = expand_home(file_name).read_text(encoding="utf-8").rstrip("\r\n")
            except UnknownHome as exc:
                self.problems.append(f"{name}__FILE: {exc}")
                return None
            except OSError as exc:
                self.problems.append(f"{name}__FILE: cannot read {file_name} ({exc.strerror})")
                return None
            except UnicodeDecodeError:
                self.problems.append(f"{name}__FILE: {file_name} is not UTF-8 text")
                return None
            if not value:
                self.problems.append(f"{name}__FILE: {file_name} is empty")
                return None
            return Secret(value)
        return Secret(direct) if direct else None

    def port(self, name: str, default: int) -> int:
        raw = self.text(name, str(default))
        if not _WHOLE_NUMBER.fullmatch(raw) or not 1 <= int(raw) <= 65535:
            self.problems.append(f"{name}: {raw!r} is not a port number (1-65535)")
            return default
        return int(raw)

    def positive_number(
        self, name: str, default: float, *, integer: bool = False, maximum: float
    ) -> float:
        """A finite number in (0, maximum], written in ASCII digits (no nan, inf, 1e3 or 1_000)."""
        raw = self.text(name, str(default))
        if raw.startswith("-") and _DECIMAL_NUMBER.fullmatch(raw[1:]):
            self.problems.append(f"{name}: must be greater than 0, got {raw!r}")
            return default
        pattern = _WHOLE_NUMBER if integer else _DECIMAL_NUMBER
        if not pattern.fullmatch(raw):
            kind = "a whole number" if integer else "a number"
            self.problems.append(f"{name}: {raw!r} is not {kind}")
            return default
        value = int(raw) if integer else float(raw)
        if value <= 0:
            self.problems.append(f"{name}: must be greater than 0, got {raw!r}")
            return default
        if not math.isfinite(value) or value > maximum:
            self.problems.append(f"{name}: {raw!r} is too large (at most {maximum:g})")
            return default
        return value

    def size(self, name: str, default: str, *, maximum: int) -> int:
        """Bytes in a size such as 512KB or 64MB (powers of 1024, as Prometheus reads them)."""
        raw = self.text(name, default).upper()
        match = _SIZE.fullmatch(raw)
        if match is None or int(match.group(1)) == 0:
            self.problems.append(f"{name}: {raw!r} is not a size such as 512KB or 64MB")
            return parse_size(default) or 1
        value = parse_size(raw) or 0
        if value > maximum:
            self.problems.append(f"{name}: {raw!r} is too large (at most {maximum} bytes)")
            return parse_size(default) or 1
        return value

    def host(self, name: str, default: str) -> str:
        """An IP address, or a host name that resolves (an address to listen on)."""
        raw = self.text(name, default)
        problem = host_problem(raw)
        if problem is not None:
            self.problems.append(f"{name}: {problem}")
            return default
        return raw

    def path(self, name: str, default: str) -> Path:
        raw = self.text(name, default)
        try:
            return expand_home(raw)
        except UnknownHome as exc:
            self.problems.append(f"{name}: {exc}")
            return Path(raw)

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.text(name, "true" if default else "false").lower()
        if raw in {"1", "true", "yes", "on"}:
            return True
        if raw in {"0", "false", "no", "off"}:
            return False
        self.problems.append(f"{name}: {raw!r} is not true or false")
        return default

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        raw = self.text(name, default).lower()
        if raw not in choices:
            self.problems.append(f"{name}: {raw!r} is not one of {', '.join(choices)}")
            return default
        return raw

    def duration(self, name: str, default: str) -> tuple[str, float]:
        raw = self.text(name, default)
        seconds = parse_duration(raw)
        if seconds is None or seconds <= 0:
            self.problems.append(f"{name}: {raw!r} is not a duration such as 15s, 1m or 1h30m")
            return default, parse_duration(default) or 1.0
        return raw, seconds


def host_problem(host: str) -> str | None:
    """Why `host` cannot be listened on by name (None when it can): not a valid address or host
    name, or a name that does not resolve. Names under `.invalid` never resolve (RFC 6761), so
    they are refused without asking DNS."""
    candidate = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(candidate)
        return None
    except ValueError:
        pass
    if not _HOST_NAME.fullmatch(candidate):
        return f"{host!r} is not an IP address or a host name"
    if candidate.rstrip(".").lower().endswith(".invalid") or candidate.lower() == "invalid":
        return f"{host!r} does not resolve (a reserved .invalid name)"
    try:
        socket.getaddrinfo(candidate, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return f"{host!r} does not resolve to an address"
    return None


def _is_loopback_url(url: str) -> bool:
    return is_loopback_host(urlsplit(url).hostname or "")


def _replica_fetch_cap(read: _Reader) -> int:
    """REPLICA_FETCH_CAP: upstream requests one scrape may make, 1 to MAX_FETCH_CAP."""
    # A generous parse bound; the real cap and its own message follow.
    cap = int(
        read.positive_number("REPLICA_FETCH_CAP", MAX_FETCH_CAP, integer=True, maximum=1_000_000)
    )
    if cap > MAX_FETCH_CAP:
        read.problems.append(f"REPLICA_FETCH_CAP: at most {MAX_FETCH_CAP}, got {cap}")
        return MAX_FETCH_CAP
    return cap


def parse_size(raw: str) -> int | None:
    """Bytes in a size such as 64MB (powers of 1024), or None when it is not one."""
    match = _SIZE.fullmatch(raw.upper())
    if match is None:
        return None
    return int(match.group(1)) * 1024 ** _SIZE_UNITS.index(match.group(2))


def parse_duration(raw: str) -> float | None:
    """Seconds in a Prometheus-style duration (`1d2h3m4s5ms`), or None when it is not one."""
    match = _DURATION.match(raw)
    if not match or not raw:
        return None
    days, hours, minutes, seconds, millis = (int(group) if group else 0 for group in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds + millis / 1000


def _discovery_region(read: _Reader, auth: ResolvedAuth) -> str | None:
    """OCI_REGION, else the credentials' region (resource principal environment, config profile);
    None for instance principals (their metadata knows it); else a problem."""
    explicit = read.optional("OCI_REGION")
    if explicit is not None:
        if not _REGION.match(explicit):
            read.problems.append(f"OCI_REGION: {explicit!r} is not a region such as us-ashburn-1")
        return explicit
    if auth.mode is AuthMode.RESOURCE_PRINCIPAL:
        region = read.optional(RESOURCE_PRINCIPAL_REGION_ENV)
        if region is None:
            read.problems.append(
                f"OCI_REGION: not set, and {RESOURCE_PRINCIPAL_REGION_ENV} is missing; "
                "set OCI_REGION to the region of the deployments (e.g. us-ashburn-1)"
            )
        return region
    if auth.profile_region:
        return auth.profile_region
    if auth.mode is AuthMode.INSTANCE_PRINCIPAL:
        return None
    read.problems.append(
        "OCI_REGION: not set, and the credentials name no region (no `region` in the config "
        "profile); set OCI_REGION to the region of the deployments (e.g. us-ashburn-1)"
    )
    return None


def _discovery(read: _Reader, auth: ResolvedAuth) -> DiscoverySettings | None:
    """DiscoverySettings when OCI_COMPARTMENT_ID is set; problems go to `read`."""
    raw = read.optional("OCI_COMPARTMENT_ID")
    if raw is None:
        for name in _DISCOVERY_ONLY:
            if read.optional(name) is not None:
                read.problems.append(
                    f"{name}: only used by fleet discovery; set OCI_COMPARTMENT_ID to turn it on"
                )
        return None
    compartments = parse_compartments(raw)
    if not compartments:
        read.problems.append("OCI_COMPARTMENT_ID: give one or more compartment OCIDs")
    read.problems.extend(compartment_problems(compartments))
    if auth.mode is AuthMode.NONE:
        read.problems.append(
            "OCI_AUTH: fleet discovery (OCI_COMPARTMENT_ID) lists deployments with OCI "
            "credentials; choose a mode other than none"
        )
    endpoint = read.optional("OCI_DATA_SCIENCE_ENDPOINT")
    if endpoint is not None:
        problem = endpoint_problem(endpoint)
        if problem is not None:
            read.problems.append(problem)
        endpoint = endpoint.rstrip("/")
    project_id = read.optional("DISCOVERY_PROJECT_ID")
    if project_id is not None and not project_id.startswith("ocid1.datascienceproject."):
        read.problems.append(
            f"DISCOVERY_PROJECT_ID: {project_id!r} is not a Data Science project OCID"
        )
    scope = read.choice("DISCOVERY_SCOPE", "aqua", tuple(s.value for s in DiscoveryScope))
    interval, seconds = read.duration("DISCOVERY_INTERVAL", "60s")
    if 0 < seconds < MIN_DISCOVERY_INTERVAL_SECONDS:
        read.problems.append(f"DISCOVERY_INTERVAL: {interval} is shorter than 1s")
    return DiscoverySettings(
        compartment_ids=compartments,
        region=_discovery_region(read, auth),
        endpoint=endpoint,
        scope=DiscoveryScope(scope),
        project_id=project_id,
        interval=interval,
        interval_seconds=seconds,
    )


def default_data_dir(environ: Mapping[str, str]) -> str:
    """`/data` in the image; for a local run, a folder in the user's data home."""
    if Path("/.dockerenv").exists() or environ.get("AQUA_METRICS_IN_IMAGE") == "1":
        return "/data"
    base = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "aqua-metrics")


def _demo_settings(read: _Reader) -> tuple[int, OutageSchedule]:
    """DEMO_DEPLOYMENTS (how many simulated deployments with nothing configured) and
    DEMO_OUTAGE_AFTER (when the flaky one first goes down; tests set it short)."""
    raw = read.text("DEMO_DEPLOYMENTS", str(DEFAULT_DEMO_DEPLOYMENTS))
    count = DEFAULT_DEMO_DEPLOYMENTS
    if raw.isdigit() and MIN_DEMO_DEPLOYMENTS <= int(raw) <= MAX_DEMO_DEPLOYMENTS:
        count = int(raw)
    else:
        read.problems.append(
            f"DEMO_DEPLOYMENTS: {raw!r} is not a whole number from "
            f"{MIN_DEMO_DEPLOYMENTS} to {MAX_DEMO_DEPLOYMENTS}"
        )
    _, first_outage = read.duration("DEMO_OUTAGE_AFTER", f"{int(DEFAULT_FIRST_OUTAGE_S)}s")
    return count, OutageSchedule(first_s=first_outage)


# --- central store: remote_write, agent mode, Grafana's datasource (issue 14) --------------------

_MONITOR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")
_HEADER_VALUE = re.compile(r"^[\x20-\x2b\x2d-\x7e]{1,1024}$")  # printable ASCII, no comma
# Headers Prometheus sets itself and refuses in remote_write `headers` (config.go reservedHeaders),
# plus Authorization, which belongs in REMOTE_WRITE_BEARER_TOKEN or the basic-auth settings.
RESERVED_REMOTE_WRITE_HEADERS = frozenset(
    {
        "authorization",
        "host",
        "content-encoding",
        "content-length",
        "content-type",
        "user-agent",
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "www-authenticate",
        "accept-encoding",
        "x-prometheus-remote-write-version",
        "x-prometheus-remote-read-version",
        "x-amz-date",
        "x-amz-security-token",
        "x-amz-content-sha256",
    }
)


@dataclass(frozen=True)
class HttpAuth:
    """Credentials for an outgoing HTTP connection: a bearer token or a basic-auth login."""

    bearer_token: Secret | None = None
    basic_auth: BasicAuthLogin | None = None


@dataclass(frozen=True)
class RemoteWriteSettings:
    """Where and how Prometheus forwards every sample (REMOTE_WRITE_*)."""

    url: str
    auth: HttpAuth
    headers: tuple[tuple[str, str], ...]
    max_shards: int
    max_backoff: str


@dataclass(frozen=True)
class GrafanaDatasourceSettings:
    """A central store that replaces the local Prometheus as Grafana's datasource."""

    url: str
    auth: HttpAuth
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class CentralSettings:
    """This container as one collector of a central store: mode, external label, destinations."""

    mode: str  # server | agent
    monitor_name: str
    remote_write: RemoteWriteSettings | None
    grafana_datasource: GrafanaDatasourceSettings | None

    @property
    def agent(self) -> bool:
        return self.mode == "agent"


def default_monitor_name(environ: Mapping[str, str], targets: tuple[Target, ...]) -> str:
    """`<region>-<host>` (or `<host>`): stable for one collector, distinct between collectors."""
    region = environ.get("OCI_RESOURCE_PRINCIPAL_REGION") or next(
        (t.labels["region"] for t in targets if "region" in t.labels), ""
    )
    raw = "-".join(part for part in (region, socket.gethostname()) if part)
    name = re.sub(r"[^A-Za-z0-9._:-]+", "-", raw).strip("-._:")[:128]
    return name or "aqua-metrics"


def _central_url(read: _Reader, name: str, url: str | None) -> str | None:
    """Check `url`, read from setting `name`: http(s), no credentials, https unless loopback."""
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        read.problems.append(f"{name}: {url!r} is not an http(s) URL")
    elif parts.username or parts.password:
        read.problems.append(f"{name}: put credentials in the auth settings, not in the URL")
    elif parts.scheme == "http" and not is_loopback_host(parts.hostname):
        read.problems.append(f"{name}: use https (plain http only to a loopback host)")
    return url


def _http_auth(
    read: _Reader,
    prefix: str,
    token: Secret | None,
    user: str | None,
    password: Secret | None,
) -> HttpAuth:
    """`<prefix>_BEARER_TOKEN(__FILE)` or `<prefix>_BASIC_AUTH_USER` + `_PASSWORD(__FILE)` (read
    by the caller, so every setting name stands literally in the code)."""
    if (user is None) != (password is None):
        read.problems.append(
            f"{prefix}_BASIC_AUTH_USER: set it together with {prefix}_BASIC_AUTH_PASSWORD"
        )
    login = BasicAuthLogin(user, password) if user and password else None
    if token is not None and login is not None:
        read.problems.append(f"{prefix}_BEARER_TOKEN: set a bearer token or basic auth, not both")
    return HttpAuth(bearer_token=token, basic_auth=login)


def _headers(read: _Reader, name: str, raw: str | None) -> tuple[tuple[str, str], ...]:
    """`Name=value,Name=value` read from setting `name`: tenant headers such as X-Scope-OrgID."""
    headers: list[tuple[str, str]] = []
    for item in (raw or "").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not _HEADER_NAME.match(key) or not _HEADER_VALUE.match(value):
            read.problems.append(f"{name}: {key or item.strip()!r} is not Name=value")
        elif key.lower() in RESERVED_REMOTE_WRITE_HEADERS:
            read.problems.append(f"{name}: {key} is set by Prometheus or the auth settings")
        elif key.lower() in {k.lower() for k, _ in headers}:
            read.problems.append(f"{name}: {key} is given twice")
        else:
            headers.append((key, value))
    return tuple(headers)


def _central_settings(
    read: _Reader, env: Mapping[str, str], targets: tuple[Target, ...]
) -> CentralSettings:
    mode = read.choice("PROMETHEUS_MODE", "server", ("server", "agent"))
    monitor_name = read.text("MONITOR_NAME", "") or default_monitor_name(env, targets)
    if not _MONITOR_NAME.match(monitor_name):
        read.problems.append(
            "MONITOR_NAME: use 1-128 letters, digits, '.', '_', ':' or '-', starting with a "
            "letter or digit"
        )
    url = _central_url(read, "REMOTE_WRITE_URL", read.optional("REMOTE_WRITE_URL"))
    auth = _http_auth(
        read,
        "REMOTE_WRITE",
        read.secret("REMOTE_WRITE_BEARER_TOKEN"),
        read.optional("REMOTE_WRITE_BASIC_AUTH_USER"),
        read.secret("REMOTE_WRITE_BASIC_AUTH_PASSWORD"),
    )
    headers = _headers(read, "REMOTE_WRITE_HEADERS", read.optional("REMOTE_WRITE_HEADERS"))
    max_shards = int(
        read.positive_number("REMOTE_WRITE_MAX_SHARDS", 50, integer=True, maximum=10_000)
    )
    max_backoff, _ = read.duration("REMOTE_WRITE_MAX_BACKOFF", "5s")
    remote_write = None
    if url is not None:
        remote_write = RemoteWriteSettings(url, auth, headers, max_shards, max_backoff)
    elif auth.bearer_token or auth.basic_auth or headers:
        read.problems.append("REMOTE_WRITE_URL: auth or headers are set, but no URL")
    if mode == "agent" and url is None:
        read.problems.append(
            "PROMETHEUS_MODE: agent mode forwards everything: set REMOTE_WRITE_URL"
        )
    datasource_url = _central_url(
        read, "GRAFANA_DATASOURCE_URL", read.optional("GRAFANA_DATASOURCE_URL")
    )
    datasource_auth = _http_auth(
        read,
        "GRAFANA_DATASOURCE",
        read.secret("GRAFANA_DATASOURCE_BEARER_TOKEN"),
        read.optional("GRAFANA_DATASOURCE_BASIC_AUTH_USER"),
        read.secret("GRAFANA_DATASOURCE_BASIC_AUTH_PASSWORD"),
    )
    datasource_headers = _headers(
        read, "GRAFANA_DATASOURCE_HEADERS", read.optional("GRAFANA_DATASOURCE_HEADERS")
    )
    datasource = None
    if datasource_url is not None:
        datasource = GrafanaDatasourceSettings(datasource_url, datasource_auth, datasource_headers)
    elif datasource_auth.bearer_token or datasource_auth.basic_auth or datasource_headers:
        read.problems.append("GRAFANA_DATASOURCE_URL: auth or headers are set, but no URL")
    return CentralSettings(mode, monitor_name, remote_write, datasource)


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
    publishing = _TOPIC_OCID.match(read.optional("OCI_NOTIFICATION_TOPIC_ID") or "") is not None
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
    discovery = _discovery(read, auth)

    scrape_interval, interval_seconds = read.duration("SCRAPE_INTERVAL", "15s")
    default_timeout = "10s" if interval_seconds >= 10 else scrape_interval
    scrape_timeout, timeout_seconds = read.duration("SCRAPE_TIMEOUT", default_timeout)
    if timeout_seconds > interval_seconds:
        read.problems.append(
            f"SCRAPE_TIMEOUT: {scrape_timeout} is longer than SCRAPE_INTERVAL {scrape_interval}"
        )

    demo = _demo_settings(read)
    proxy = ProxySettings(
        host=read.host("PROXY_HOST", "127.0.0.1"),
        port=read.port("PROXY_PORT", 8080),
        # The demo runs only when nothing at all is configured to scrape.
        targets=targets or (() if discovery is not None else demo_targets(demo[0])),
        auth=auth,
        upstream_timeout_seconds=read.positive_number(
            "UPSTREAM_TIMEOUT_SECONDS", 10.0, maximum=MAX_TIMEOUT_SECONDS
        ),
        connect_timeout_seconds=read.positive_number(
            "UPSTREAM_CONNECT_TIMEOUT_SECONDS", 3.0, maximum=MAX_TIMEOUT_SECONDS
        ),
        max_response_bytes=int(
            read.positive_number(
                "MAX_RESPONSE_BYTES", 16 * 1024 * 1024, integer=True, maximum=MAX_BODY_BYTES
            )
        ),
        max_inflight_per_target=int(
            read.positive_number("MAX_INFLIGHT_PER_TARGET", 4, integer=True, maximum=1024)
        ),
        token_refresh_check_seconds=read.positive_number(
            "TOKEN_REFRESH_CHECK_SECONDS", 30.0, maximum=86400
        ),
        log_level=read.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
        discovery=discovery,
        demo_outages=demo[1],
        scrape_interval_seconds=interval_seconds,
        replica_fetch_cap=_replica_fetch_cap(read),
        header_timeout_seconds=read.positive_number(
            "PROXY_HEADER_TIMEOUT_SECONDS", 10.0, maximum=MAX_TIMEOUT_SECONDS
        ),
    )

    expose = read.boolean("PROMETHEUS_EXPOSE", False)
    basic_user = read.text("PROMETHEUS_BASIC_AUTH_USER", "prometheus")
    basic_password = read.secret("PROMETHEUS_BASIC_AUTH_PASSWORD")
    if not _BASIC_AUTH_USER.match(basic_user):
        read.problems.append(
            "PROMETHEUS_BASIC_AUTH_USER: use 1-64 letters, digits, '.', '_' or '-'"
        )
    if expose and basic_password is None:
        read.problems.append(
            "PROMETHEUS_EXPOSE: exposing Prometheus requires PROMETHEUS_BASIC_AUTH_PASSWORD "
            "(or PROMETHEUS_BASIC_AUTH_PASSWORD__FILE)"
        )
    retention_time, _ = read.duration("PROMETHEUS_RETENTION_TIME", "15d")
    retention_size = read.text("PROMETHEUS_RETENTION_SIZE", "2GB").upper()
    size = _SIZE.match(retention_size)
    if size is None or int(size.group(1)) == 0:
        read.problems.append(
            f"PROMETHEUS_RETENTION_SIZE: {retention_size!r} is not a size such as 512MB or 2GB"
        )
    prometheus = PrometheusSettings(
        port=read.port("PROMETHEUS_PORT", 9090),
        expose=expose,
        basic_auth_user=basic_user,
        basic_auth_password=basic_password,
        retention_time=retention_time,
        retention_size=retention_size,
        binary=read.optional("PROMETHEUS_BIN"),
    )

    grafana = GrafanaSettings(
        port=read.port("GRAFANA_PORT", 3000),
        enabled=read.choice("GRAFANA_ENABLED", "auto", ("auto", "true", "false")),
        anonymous_viewer=read.boolean("GRAFANA_ANONYMOUS_VIEWER", False),
        admin_password=read.secret("GF_SECURITY_ADMIN_PASSWORD"),
        home=read.optional("GRAFANA_HOME"),
        binary=read.optional("GRAFANA_BIN"),
    )
    anonymous_role = env.get("GF_AUTH_ANONYMOUS_ORG_ROLE", "Viewer").strip().lower()
    if anonymous_role not in {"", "viewer"}:
        read.problems.append(
            "GF_AUTH_ANONYMOUS_ORG_ROLE: anonymous users may only be Viewer; "
            "use GRAFANA_ANONYMOUS_VIEWER=true and real accounts for editing"
        )

    alerting = _read_alerting(read, proxy.host)
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
    oci_monitoring = _oci_monitoring(read, auth.mode is not AuthMode.NONE)
    central = _central_settings(read, env, targets)

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


def _oci_monitoring(read: _Reader, signed: bool) -> OciMonitoringSettings:
    """OCI_MONITORING, _INTERVAL, _ENDPOINT, _COMPARTMENT_ID (default: OCI_COMPARTMENT_ID)."""
    from app.monitoring.api import endpoint_problem

    mode = read.choice("OCI_MONITORING", "auto", ("auto", "true", "false"))
    _, interval = read.duration("OCI_MONITORING_INTERVAL", "60s")
    endpoint = read.optional("OCI_MONITORING_ENDPOINT")
    if endpoint is not None and (problem := endpoint_problem("OCI_MONITORING_ENDPOINT", endpoint)):
        read.problems.append(problem)
    own = read.optional("OCI_MONITORING_COMPARTMENT_ID")
    setting = "OCI_MONITORING_COMPARTMENT_ID" if own else "OCI_COMPARTMENT_ID"
    raw = own or read.optional("OCI_COMPARTMENT_ID") or ""
    compartments = tuple(dict.fromkeys(c.strip() for c in raw.split(",") if c.strip()))
    for value in compartments:
        if not value.startswith(("ocid1.compartment.", "ocid1.tenancy.")):
            read.problems.append(f"{setting}: {value!r} is not a compartment or tenancy OCID")
    if mode == "true" and not compartments:
        read.problems.append(
            "OCI_MONITORING: true needs the deployments' compartment: set "
            "OCI_MONITORING_COMPARTMENT_ID (or OCI_COMPARTMENT_ID)"
        )
    if mode == "true" and not signed:
        read.problems.append("OCI_MONITORING: true needs signed requests (OCI_AUTH is none)")
    return OciMonitoringSettings(mode, interval, endpoint, compartments)
