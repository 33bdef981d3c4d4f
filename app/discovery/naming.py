"""Readable, unique names for discovered deployments, and the labels every series of one carries.

A name is a slug of the display name (`Llama 3.1 8B (prod)` -> `llama-3-1-8b-prod`), shaped like
`app.targets.TARGET_NAME_PATTERN` so it works as a target name in `/targets/{name}/metrics`.
Deployments whose slugs collide are told apart by a fragment of their OCID: the live, oldest one
keeps the bare slug, the others get `<slug>-<fragment>`. The choice depends only on the
deployments themselves, never on listing order, so a name is stable while its display name is.

Label names never include `engine` or `model_name`: vLLM's own series carry those, and a target
label of the same name would rename them to `exported_*`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime

from app.discovery.deployments import GONE_STATES, DiscoveredDeployment
from app.targets import TARGET_NAME_PATTERN

MAX_NAME_LENGTH = 63
FRAGMENT_LENGTH = 6
LABEL_NAMES = (
    "deployment",
    "deployment_ocid",
    "region",
    "display_name",
    "aqua_model",
    "shape",
    "inference_container",
)
FORBIDDEN_LABEL_NAMES = frozenset({"engine", "model_name"})
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_OLDEST_FIRST = datetime.min


def slugify(display_name: str) -> str:
    """Lower-case a-z/0-9 words joined by `-`, at most 63 characters; "" when nothing is left."""
    slug = _NOT_SLUG.sub("-", display_name.lower()).strip("-")
    return slug[:MAX_NAME_LENGTH].rstrip("-")


def ocid_fragment(ocid: str, length: int = FRAGMENT_LENGTH) -> str:
    """The last `length` characters of an OCID's unique part (lower case)."""
    unique = re.sub(r"[^a-z0-9]", "", ocid.rsplit(".", 1)[-1].lower())
    return unique[-length:] or "x"


def _with_fragment(base: str, ocid: str, length: int) -> str:
    fragment = ocid_fragment(ocid, length)
    if not base:
        return f"md-{fragment}"
    head = base[: MAX_NAME_LENGTH - len(fragment) - 1].rstrip("-")
    return f"{head}-{fragment}"


def _claim_order(deployment: DiscoveredDeployment) -> tuple[bool, datetime, str]:
    """Who keeps a contested bare slug: live before leaving, then oldest, then OCID."""
    created = deployment.time_created
    stamp = created.replace(tzinfo=None) if created is not None else _OLDEST_FIRST
    return (deployment.lifecycle_state in GONE_STATES, stamp, deployment.ocid)


def assign_names(
    deployments: Iterable[DiscoveredDeployment],
    *,
    reserved: Collection[str] = (),
    fixed: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Map each deployment's OCID to its unique name.

    `reserved` names are taken already (explicit targets: their names win). `fixed` maps OCIDs to
    names decided elsewhere (a deployment the user also configured explicitly keeps that name).
    """
    fixed = dict(fixed or {})
    taken = set(reserved) | set(fixed.values())
    names: dict[str, str] = {}
    pending = sorted(
        (d for d in deployments if d.ocid not in fixed),
        key=_claim_order,
    )
    # First pass: bare slugs for the first claimant of each; second pass: fragments for the rest.
    rest: list[DiscoveredDeployment] = []
    for deployment in pending:
        slug = slugify(deployment.display_name)
        if slug and slug not in taken and TARGET_NAME_PATTERN.match(slug):
            names[deployment.ocid] = slug
            taken.add(slug)
        else:
            rest.append(deployment)
    for deployment in rest:
        slug = slugify(deployment.display_name)
        length = FRAGMENT_LENGTH
        candidate = _with_fragment(slug, deployment.ocid, length)
        while candidate in taken and length < 40:
            length += 4
            candidate = _with_fragment(slug, deployment.ocid, length)
        names[deployment.ocid] = candidate
        taken.add(candidate)
    names.update({ocid: name for ocid, name in fixed.items()})
    return names


def deployment_labels(deployment: DiscoveredDeployment, name: str) -> dict[str, str]:
    """The target labels of a discovered deployment (every key always present; "" if unknown)."""
    return {
        "deployment": name,
        "deployment_ocid": deployment.ocid.lower(),
        "region": deployment.region.lower(),
        "display_name": deployment.display_name,
        "aqua_model": deployment.aqua_model,
        "shape": deployment.shape,
        "inference_container": deployment.inference_container.value,
    }
