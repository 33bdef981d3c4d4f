"""Scrape targets: what a deployment is called, where its metrics live, and the labels it carries.

Targets are plain data. Service discovery (/sd) and the forwarding route read the same tuple of
`Target`s, so a name can only ever map to the one URL the user configured. The built-in demo is a
target like any other, at a URL under `http://demo.invalid/` that only the demo transport serves.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from app.errors import ConfigError
from app.replicas.exposition import REPLICA_LABEL

DEMO_TARGET_NAME = "demo"
# RFC 6761 reserves .invalid: it never resolves, so a demo URL can never reach a network. Users
# cannot configure it (see `complete_metrics_url`).
DEMO_HOST = "demo.invalid"

TARGET_NAME_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$")
_NAMED_ENTRY = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=\s*(\S.*?)\s*$")
_DEPLOYMENT_OCID = re.compile(
    r"ocid1\.datasciencemodeldeployment\.[a-z0-9-]+\.[a-z0-9-]*\.[a-z0-9]+", re.I
)
_REGION_FROM_HOST = re.compile(r"^modeldeployment\.([a-z0-9-]+)\.", re.I)


class TargetError(ConfigError):
    """A target setting that cannot be used; the message names what is wrong (never a secret)."""


@dataclass(frozen=True)
class Target:
    """One deployment to scrape: its name, the URL of its metrics, and its Prometheus labels.

    `instance_count` is how many replicas (model deployment instances) serve the URL, when
    discovery knows it; None means unknown, and the proxy learns it from the replicas it meets.
    No label may be called `replica`: the proxy puts that label on every replica's series."""

    name: str
    url: str
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    instance_count: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if REPLICA_LABEL in self.labels:
            raise TargetError(
                f"target {self.name}: the label {REPLICA_LABEL!r} is reserved for the replicas "
                "behind one deployment"
            )
        if self.instance_count is not None and self.instance_count < 1:
            raise TargetError(f"target {self.name}: instance count must be at least 1")


def demo_target(name: str = DEMO_TARGET_NAME) -> Target:
    """A built-in simulated deployment (served when no real target is configured)."""
    return Target(
        name=name,
        url=f"http://{DEMO_HOST}/{name}/metrics",
        labels={"deployment": name, "demo": "true"},
    )


def is_demo_url(url: str) -> bool:
    """True for the URL of a built-in simulated deployment."""
    return urlsplit(url).hostname == DEMO_HOST


def is_loopback_host(host: str) -> bool:
    """True for localhost names and loopback addresses (the only hosts allowed over plain http)."""
    if host.lower() in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def complete_metrics_url(raw: str) -> str:
    """Validate a target URL and complete a bare model deployment URL to its `/predict/metrics`.

    Accepted: a URL ending in `/metrics` (taken as is); a model deployment URL (last path segment
    is the deployment OCID) or one ending in `/predict` (completed, as Oracle's guide has users
    write it); a server root such as a local vLLM's `http://127.0.0.1:8000` (completed to
    `/metrics`). https only, except for loopback hosts.
    """
    value = raw.strip()
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise TargetError(f"{value!r} is not a valid URL ({exc})") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise TargetError(f"{value!r} is not an http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise TargetError("URLs must not carry user:password; credentials come from OCI_AUTH")
    if parts.fragment:
        raise TargetError(f"{value!r} has a #fragment, which a metrics URL never needs")
    if parts.hostname.rstrip(".").rsplit(".", 1)[-1] == "invalid":
        raise TargetError(f"{value!r} is in the .invalid domain, reserved for the built-in demo")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise TargetError(
            f"{value!r} uses plain http; only https is allowed, except for loopback hosts"
        )
    del port  # parsed above only to reject a malformed port early
    path = parts.path.rstrip("/")
    segments = [segment for segment in path.split("/") if segment]
    if path.endswith("/metrics"):
        pass
    elif path.endswith("/predict"):
        path = f"{path}/metrics"
    elif segments and _DEPLOYMENT_OCID.fullmatch(segments[-1]):
        path = f"{path}/predict/metrics"
    elif not segments:
        path = "/metrics"
    else:
        raise TargetError(
            f"{value!r} does not end in /metrics; give <model-deployment-url>/predict/metrics"
        )
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def labels_for(name: str, url: str) -> dict[str, str]:
    """Prometheus target labels: the name, plus deployment OCID and region where the URL shows them."""
    parts = urlsplit(url)
    labels = {"deployment": name}
    ocid = _DEPLOYMENT_OCID.search(parts.path)
    if ocid:
        labels["deployment_ocid"] = ocid.group(0).lower()
    region = _REGION_FROM_HOST.match(parts.hostname or "")
    if region:
        labels["region"] = region.group(1).lower()
    return labels


def derive_name(url: str) -> str:
    """A stable short name for an unnamed target: from the deployment OCID, else host and port."""
    parts = urlsplit(url)
    ocid = _DEPLOYMENT_OCID.search(parts.path)
    if ocid:
        unique = ocid.group(0).rsplit(".", 1)[-1].lower()
        return f"md-{unique[-10:]}"
    host = re.sub(r"[^a-z0-9]+", "-", (parts.hostname or "target").lower()).strip("-")
    if is_loopback_host(parts.hostname or ""):
        host = "local"
    port = parts.port
    name = f"{host}-{port}" if port else host
    return name[:63].strip("-_") or "target"


def parse_targets(target: str | None, targets: str | None) -> tuple[Target, ...]:
    """Parse TARGET (one URL) and TARGETS (`name=url` or `url`, by comma or newline).

    Raises TargetError naming the offending setting. An empty result means "serve the demo".
    """
    if target and target.strip() and targets and targets.strip():
        raise TargetError(
            "TARGET and TARGETS are both set; use TARGET for one deployment or TARGETS for several"
        )
    entries: list[tuple[str, str | None, str]] = []
    if target and target.strip():
        entries.append(("TARGET", None, target.strip()))
    elif targets and targets.strip():
        for item in re.split(r"[,\n]", targets):
            if not item.strip():
                continue
            named = _NAMED_ENTRY.match(item)
            if named and "/" not in named.group(1) and ":" not in named.group(1):
                entries.append(("TARGETS", named.group(1), named.group(2)))
            else:
                entries.append(("TARGETS", None, item.strip()))
    parsed: list[Target] = []
    seen: dict[str, str] = {}
    for setting, name, raw_url in entries:
        try:
            url = complete_metrics_url(raw_url)
        except TargetError as exc:
            raise TargetError(f"{setting}: {exc}") from None
        if name is not None and not TARGET_NAME_PATTERN.match(name):
            raise TargetError(
                f"{setting}: name {name!r} must be a lowercase slug (a-z, 0-9, '-' or '_', at most 63)"
            )
        final_name = name or derive_name(url)
        if final_name in seen:
            raise TargetError(
                f"{setting}: duplicate target name {final_name!r}; give each deployment its own name=url"
            )
        seen[final_name] = url
        parsed.append(Target(name=final_name, url=url, labels=labels_for(final_name, url)))
    return tuple(parsed)
