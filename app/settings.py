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
from app.targets import Target, TargetError, demo_target, is_loopback_host, parse_targets

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


@dataclass(frozen=True)
class Settings:
    proxy: ProxySettings
    prometheus: PrometheusSettings
    grafana: GrafanaSettings
    data_dir: Path
    scrape_interval: str
    scrape_timeout: str
    # Per scrape: the largest uncompressed page (bytes; the proxy and Prometheus both enforce it)
    # and the most samples Prometheus accepts from one page.
    scrape_body_size_limit: int = 64 * 1024 * 1024
    scrape_sample_limit: int = 100_000


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
    auth_mode = read.choice("OCI_AUTH", "auto", tuple(mode.value for mode in AuthMode))
    config_file = read.text("OCI_CONFIG_FILE", "~/.oci/config")
    profile = read.text("OCI_CONFIG_PROFILE", "DEFAULT")
    auth = resolve_auth(
        AuthMode(auth_mode),
        has_targets=bool(targets) or discovering,
        config_file=config_file,
        profile=profile,
        environ=env,
        problems=read.problems,
        all_loopback=bool(targets)
        and not discovering
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

    proxy = ProxySettings(
        host=read.host("PROXY_HOST", "127.0.0.1"),
        port=read.port("PROXY_PORT", 8080),
        # The demo runs only when nothing at all is configured to scrape.
        targets=targets or (() if discovery is not None else (demo_target(),)),
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

    body_size_limit = read.size("SCRAPE_BODY_SIZE_LIMIT", "64MB", maximum=MAX_BODY_BYTES)
    sample_limit = int(
        read.positive_number("SCRAPE_SAMPLE_LIMIT", 100_000, integer=True, maximum=100_000_000)
    )

    data_dir = read.path("DATA_DIR", default_data_dir(env))

    if read.problems:
        raise SettingsError(*read.problems)
    return Settings(
        proxy=proxy,
        prometheus=prometheus,
        grafana=grafana,
        data_dir=data_dir,
        scrape_interval=scrape_interval,
        scrape_timeout=scrape_timeout,
        scrape_body_size_limit=body_size_limit,
        scrape_sample_limit=sample_limit,
    )
