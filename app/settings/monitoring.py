"""OCI Monitoring's settings (OCI_MONITORING*): whether and how often the deployments' OCI
Monitoring metrics are read, and from which compartments."""

from __future__ import annotations

from dataclasses import dataclass

from app.discovery.listing import compartment_problems, parse_compartments
from app.oci_clients import endpoint_problem
from app.settings.reader import _Reader
from app.targets import TargetError, parse_targets


@dataclass(frozen=True)
class OciMonitoringSettings:
    """OCI_MONITORING*: read the deployments' OCI Monitoring metrics (see app.monitoring)."""

    mode: str = "false"  # auto | true | false
    interval_seconds: float = 60.0
    endpoint: str | None = None
    compartment_ids: tuple[str, ...] = ()


def read_oci_monitoring(read: _Reader, signed: bool) -> OciMonitoringSettings:
    """OCI_MONITORING, _INTERVAL, _ENDPOINT, _COMPARTMENT_ID (default: OCI_COMPARTMENT_ID)."""
    mode = read.choice("OCI_MONITORING", "auto", ("auto", "true", "false"))
    _, interval = read.duration("OCI_MONITORING_INTERVAL", "60s")
    endpoint = read.optional("OCI_MONITORING_ENDPOINT")
    if endpoint is not None and (problem := endpoint_problem("OCI_MONITORING_ENDPOINT", endpoint)):
        read.problems.append(problem)
    own = read.optional("OCI_MONITORING_COMPARTMENT_ID")
    setting = "OCI_MONITORING_COMPARTMENT_ID" if own else "OCI_COMPARTMENT_ID"
    raw = own or read.optional("OCI_COMPARTMENT_ID") or ""
    compartments = parse_compartments(raw)
    read.problems.extend(compartment_problems(compartments, setting))
    if mode == "true" and not compartments and not _targets_carry_ocids(read):
        read.problems.append(
            "OCI_MONITORING: true needs the deployments' compartment: set "
            "OCI_MONITORING_COMPARTMENT_ID (or OCI_COMPARTMENT_ID), or give model deployment "
            "URLs as targets (they name the OCID and region; their compartment is looked up)"
        )
    if mode == "true" and not signed:
        read.problems.append("OCI_MONITORING: true needs signed requests (OCI_AUTH is none)")
    return OciMonitoringSettings(mode, interval, endpoint, compartments)


def _targets_carry_ocids(read: _Reader) -> bool:
    """Whether a TARGET/TARGETS URL names a model deployment OCID and its region (its compartment
    can then be looked up there). Bad targets are reported where the targets are read."""
    try:
        targets = parse_targets(read.environ.get("TARGET"), read.environ.get("TARGETS"))
    except TargetError:
        return False
    return any({"deployment_ocid", "region"} <= target.labels.keys() for target in targets)
