"""The one reader of the environment: every setting is parsed and validated here, once.

`check`, `proxy` and `start` all call `load_settings`, so a problem reads the same everywhere. Each
problem is one line, `SETTING: what is wrong`, and never contains a secret's value. Secrets accept a
`<NAME>__FILE` variant (the Docker/Kubernetes secrets convention) read here and nowhere else.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from app.errors import ConfigError
from app.oci_config import AuthMode, ResolvedAuth, resolve_auth
from app.targets import Target, TargetError, demo_target, is_loopback_host, parse_targets

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$")
_SIZE = re.compile(r"^(\d+)(B|KB|MB|GB|TB|PB|EB)$")
_BASIC_AUTH_USER = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


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
class ProxySettings:
    host: str
    port: int
    targets: tuple[Target, ...]
    auth: ResolvedAuth
    upstream_timeout_seconds: float
    connect_timeout_seconds: float
    max_response_bytes: int
    max_inflight_per_target: int
    token_refresh_check_seconds: float
    log_level: str

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


@dataclass(frozen=True)
class Settings:
    proxy: ProxySettings
    prometheus: PrometheusSettings
    grafana: GrafanaSettings
    data_dir: Path
    scrape_interval: str
    scrape_timeout: str
    central: CentralSettings


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
                value = Path(file_name).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                self.problems.append(f"{name}__FILE: cannot read {file_name} ({exc.strerror})")
                return None
            if not value:
                self.problems.append(f"{name}__FILE: {file_name} is empty")
                return None
            return Secret(value)
        return Secret(direct) if direct else None

    def port(self, name: str, default: int) -> int:
        raw = self.text(name, str(default))
        if not raw.isdigit() or not 1 <= int(raw) <= 65535:
            self.problems.append(f"{name}: {raw!r} is not a port number (1-65535)")
            return default
        return int(raw)

    def positive_number(self, name: str, default: float, *, integer: bool = False) -> float:
        raw = self.text(name, str(default))
        try:
            value = int(raw) if integer else float(raw)
        except ValueError:
            kind = "a whole number" if integer else "a number"
            self.problems.append(f"{name}: {raw!r} is not {kind}")
            return default
        if value <= 0:
            self.problems.append(f"{name}: must be greater than 0, got {raw!r}")
            return default
        return value

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


def _is_loopback_url(url: str) -> bool:
    return is_loopback_host(urlsplit(url).hostname or "")


def parse_duration(raw: str) -> float | None:
    """Seconds in a Prometheus-style duration (`1d2h3m4s5ms`), or None when it is not one."""
    match = _DURATION.match(raw)
    if not match or not raw:
        return None
    days, hours, minutes, seconds, millis = (int(group) if group else 0 for group in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds + millis / 1000


def default_data_dir(environ: Mapping[str, str]) -> str:
    """`/data` in the image; for a local run, a folder in the user's data home."""
    if Path("/.dockerenv").exists() or environ.get("AQUA_METRICS_IN_IMAGE") == "1":
        return "/data"
    base = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "aqua-metrics")


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


def _central_url(read: _Reader, name: str) -> str | None:
    url = read.optional(name)
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


def _http_auth(read: _Reader, prefix: str) -> HttpAuth:
    """`<prefix>_BEARER_TOKEN(__FILE)` or `<prefix>_BASIC_AUTH_USER` + `_PASSWORD(__FILE)`."""
    token = read.secret(f"{prefix}_BEARER_TOKEN")
    user = read.optional(f"{prefix}_BASIC_AUTH_USER")
    password = read.secret(f"{prefix}_BASIC_AUTH_PASSWORD")
    if (user is None) != (password is None):
        read.problems.append(
            f"{prefix}_BASIC_AUTH_USER: set it together with {prefix}_BASIC_AUTH_PASSWORD"
        )
    login = BasicAuthLogin(user, password) if user and password else None
    if token is not None and login is not None:
        read.problems.append(f"{prefix}_BEARER_TOKEN: set a bearer token or basic auth, not both")
    return HttpAuth(bearer_token=token, basic_auth=login)


def _headers(read: _Reader, name: str) -> tuple[tuple[str, str], ...]:
    """`Name=value,Name=value`: tenant headers such as X-Scope-OrgID or THANOS-TENANT."""
    raw = read.optional(name)
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
    url = _central_url(read, "REMOTE_WRITE_URL")
    auth = _http_auth(read, "REMOTE_WRITE")
    headers = _headers(read, "REMOTE_WRITE_HEADERS")
    max_shards = int(read.positive_number("REMOTE_WRITE_MAX_SHARDS", 50, integer=True))
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
    datasource_url = _central_url(read, "GRAFANA_DATASOURCE_URL")
    datasource_auth = _http_auth(read, "GRAFANA_DATASOURCE")
    datasource_headers = _headers(read, "GRAFANA_DATASOURCE_HEADERS")
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

    auth_mode = read.choice("OCI_AUTH", "auto", tuple(mode.value for mode in AuthMode))
    config_file = read.text("OCI_CONFIG_FILE", "~/.oci/config")
    profile = read.text("OCI_CONFIG_PROFILE", "DEFAULT")
    auth = resolve_auth(
        AuthMode(auth_mode),
        has_targets=bool(targets),
        config_file=config_file,
        profile=profile,
        environ=env,
        problems=read.problems,
        all_loopback=bool(targets) and all(_is_loopback_url(t.url) for t in targets),
    )

    scrape_interval, interval_seconds = read.duration("SCRAPE_INTERVAL", "15s")
    default_timeout = "10s" if interval_seconds >= 10 else scrape_interval
    scrape_timeout, timeout_seconds = read.duration("SCRAPE_TIMEOUT", default_timeout)
    if timeout_seconds > interval_seconds:
        read.problems.append(
            f"SCRAPE_TIMEOUT: {scrape_timeout} is longer than SCRAPE_INTERVAL {scrape_interval}"
        )

    proxy = ProxySettings(
        host=read.text("PROXY_HOST", "127.0.0.1"),
        port=read.port("PROXY_PORT", 8080),
        targets=targets or (demo_target(),),
        auth=auth,
        upstream_timeout_seconds=read.positive_number("UPSTREAM_TIMEOUT_SECONDS", 10.0),
        connect_timeout_seconds=read.positive_number("UPSTREAM_CONNECT_TIMEOUT_SECONDS", 3.0),
        max_response_bytes=int(
            read.positive_number("MAX_RESPONSE_BYTES", 16 * 1024 * 1024, integer=True)
        ),
        max_inflight_per_target=int(
            read.positive_number("MAX_INFLIGHT_PER_TARGET", 4, integer=True)
        ),
        token_refresh_check_seconds=read.positive_number("TOKEN_REFRESH_CHECK_SECONDS", 30.0),
        log_level=read.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
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

    ports = {
        "PROXY_PORT": proxy.port,
        "PROMETHEUS_PORT": prometheus.port,
        "GRAFANA_PORT": grafana.port,
    }
    by_port: dict[int, str] = {}
    for name, number in ports.items():
        if number in by_port:
            read.problems.append(f"{name}: port {number} is already used by {by_port[number]}")
        by_port[number] = name

    data_dir = Path(read.text("DATA_DIR", default_data_dir(env))).expanduser()
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
        central=central,
    )
