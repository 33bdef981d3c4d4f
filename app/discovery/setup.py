"""Discovery from the settings: the lister the proxy and `aqua-metrics discover` both use."""

from __future__ import annotations

from collections.abc import Sequence

from app.credentials import Credentials, CredentialsError
from app.discovery.listing import DeploymentLister, default_region
from app.settings import DiscoverySettings
from app.targets import Target, is_demo_url


def build_lister(discovery: DiscoverySettings, credentials: Credentials | None) -> DeploymentLister:
    """A lister signing with the proxy's own credentials (asked for the current SDK signer at
    each listing, so a refreshed session token is used). Raises CredentialsError."""
    if credentials is None:
        raise CredentialsError("OCI_AUTH: fleet discovery needs OCI credentials to list")
    region = discovery.region or default_region(credentials.sdk_signer)
    if region is None:
        raise CredentialsError(
            "OCI_REGION: not set, and the instance metadata gave no region; set OCI_REGION"
        )
    return DeploymentLister(discovery.listing_config(region), lambda: credentials.sdk_signer)


def explicit_targets(targets: Sequence[Target]) -> tuple[Target, ...]:
    """The configured targets discovery merges with (never a demo)."""
    return tuple(target for target in targets if not is_demo_url(target.url))
