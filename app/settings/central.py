"""The central store's settings (issue 14): this container as one collector that forwards its
samples by remote_write (PROMETHEUS_MODE=agent keeps none), and Grafana reading a central store."""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.oci_config import ResolvedAuth
from app.settings.discovery import RESOURCE_PRINCIPAL_REGION_ENV, DiscoverySettings
from app.settings.prometheus import BasicAuthLogin
from app.settings.reader import Secret, _Reader
from app.targets import Target, is_loopback_host

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


def collector_region(
    environ: Mapping[str, str],
    targets: tuple[Target, ...],
    discovery: DiscoverySettings | None,
    auth: ResolvedAuth,
) -> str | None:
    """The region this collector watches, as far as the settings know it: discovery's (OCI_REGION,
    else the credentials' region), the resource principal's, the static targets' URLs', else the
    config profile's; None when none names one (an instance principal's region is only known
    once its signer asks the instance metadata)."""
    candidates = (
        discovery.region if discovery is not None else None,
        environ.get(RESOURCE_PRINCIPAL_REGION_ENV, "").strip(),
        next((t.labels["region"] for t in targets if "region" in t.labels), None),
        auth.profile_region,
    )
    return next((region for region in candidates if region), None)


def default_monitor_name(region: str | None) -> str:
    """`<region>-<host>` (or `<host>`): stable for one collector, distinct between collectors."""
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


def read_central(read: _Reader, region: str | None) -> CentralSettings:
    """PROMETHEUS_MODE, MONITOR_NAME (default from `region`, see `collector_region`),
    REMOTE_WRITE_* and GRAFANA_DATASOURCE_*; problems go to `read.problems`."""
    mode = read.choice("PROMETHEUS_MODE", "server", ("server", "agent"))
    monitor_name = read.text("MONITOR_NAME", "") or default_monitor_name(region)
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
