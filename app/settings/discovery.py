"""Fleet discovery's settings (OCI_COMPARTMENT_ID and the settings that only mean something
with it): which compartments, which region, how often."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.discovery.fleet import DiscoveryScope
from app.discovery.listing import ListingConfig, compartment_problems, parse_compartments
from app.oci_clients import endpoint_problem
from app.oci_config import AuthMode, ResolvedAuth
from app.settings.reader import _Reader

_REGION = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
RESOURCE_PRINCIPAL_REGION_ENV = "OCI_RESOURCE_PRINCIPAL_REGION"
MIN_DISCOVERY_INTERVAL_SECONDS = 1.0
# Settings that only mean something with discovery on (set without OCI_COMPARTMENT_ID: a mistake).
_DISCOVERY_ONLY = (
    "OCI_DATA_SCIENCE_ENDPOINT",
    "DISCOVERY_SCOPE",
    "DISCOVERY_PROJECT_ID",
    "DISCOVERY_INTERVAL",
)


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


def read_discovery(read: _Reader, auth: ResolvedAuth) -> DiscoverySettings | None:
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
        problem = endpoint_problem("OCI_DATA_SCIENCE_ENDPOINT", endpoint)
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
