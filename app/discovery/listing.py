"""One listing of the fleet: every model deployment of the configured compartments, any state.

Blocking (the `oci` SDK uses `requests`): run it off the event loop (`Poller` does). Per
compartment, `DataScienceClient.list_model_deployments` pages with `limit=100` through
`oci.pagination.list_call_get_all_results` (`opc-next-page`). The API takes at most ONE filter
besides the compartment: the project (when DISCOVERY_PROJECT_ID is set), never the lifecycle
state, because the inventory reports every state.

Retries are the poller's job, so the SDK's own are off (no retry strategy, no circuit breaker).
The pagination helper wraps every page in the SDK's DEFAULT retry strategy whatever the caller
asks (up to 8 attempts over minutes, which would hide throttling from our counters and hold the
thread), so each page call turns SDK errors into `ListingError`, which that strategy never retries.

Any failure of any compartment fails the whole listing (a `ListingError` with a kind and a hint):
a partial list would make the deployments of the failing compartment vanish from `/sd`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from app.discovery.deployments import DiscoveredDeployment, from_summary
from app.discovery.poll_error import PollError
from app.oci_clients import CALL_FAILURES, build_sdk_client, call_failure

PAGE_LIMIT = 100
MAX_PAGES = 1000  # 100,000 deployments per compartment: a guard against a looping page token
LISTING_KINDS = CALL_FAILURES
POLICY_HINT = (
    "listing needs an IAM policy such as 'allow dynamic-group <group> to read "
    "data-science-model-deployments in compartment <compartment>' (or 'any-user ... where "
    "request.principal.id = ...'); check OCI_COMPARTMENT_ID too"
)
_NETWORK_HINT = "check OCI_REGION / OCI_DATA_SCIENCE_ENDPOINT and the network path"
_HINTS = {
    "throttled": "the Data Science API is throttling",
    "server_error": "the Data Science API failed",
    "not_authenticated": "the API refused the request signature: check the credentials "
    "(OCI_AUTH), an expired session token, a deleted API key or the clock",
    "not_authorized": POLICY_HINT,
    "bad_request": "check OCI_COMPARTMENT_ID",
    "timeout": _NETWORK_HINT,
    "unreachable": _NETWORK_HINT,
}


class ListingError(PollError):
    """A listing failed; `kind` is one of LISTING_KINDS (or `error`)."""


@dataclass(frozen=True)
class ListingConfig:
    """Where and what to list (from OCI_COMPARTMENT_ID, OCI_REGION, OCI_DATA_SCIENCE_ENDPOINT,
    DISCOVERY_PROJECT_ID)."""

    compartment_ids: tuple[str, ...]
    region: str
    endpoint: str | None = None  # default: derived from the region by the SDK
    project_id: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    page_limit: int = PAGE_LIMIT


SignerProvider = Callable[[], Any]


def build_client(signer: Any, config: ListingConfig) -> Any:
    """A `DataScienceClient` for `signer`, without the SDK's retries and circuit breaker."""
    import oci

    return build_sdk_client(
        oci.data_science.DataScienceClient,
        signer,
        config.region,
        timeout=(config.connect_timeout, config.read_timeout),
        endpoint=config.endpoint,
    )


def classify_error(exc: BaseException, endpoint_host: str) -> ListingError:
    """Turn an SDK/transport exception into a counted kind with a one-line hint (no secrets)."""
    kind, summary = call_failure(exc, endpoint_host)
    return ListingError(kind, summary, _HINTS.get(kind, ""))


class DeploymentLister:
    """Lists the fleet with the current signer; callable, so a `Poller` can run it.

    `signer_provider` returns the SDK signer in use now (a session-token refresh may replace
    it); the client is rebuilt only when the signer object changes.
    """

    def __init__(
        self,
        config: ListingConfig,
        signer_provider: SignerProvider,
        *,
        client_factory: Callable[[Any, ListingConfig], Any] = build_client,
    ) -> None:
        if not config.compartment_ids:
            raise ValueError("at least one compartment is needed")
        self.config = config
        self._signer_provider = signer_provider
        self._client_factory = client_factory
        self._lock = threading.Lock()
        self._client: Any = None
        self._client_signer: Any = None

    @property
    def endpoint_host(self) -> str:
        if self.config.endpoint:
            return urlsplit(self.config.endpoint).netloc or self.config.endpoint
        return f"datascience.{self.config.region}.oci.oraclecloud.com"

    def _current_client(self) -> Any:
        signer = self._signer_provider()
        with self._lock:
            if self._client is None or signer is not self._client_signer:
                self._client = self._client_factory(signer, self.config)
                self._client_signer = signer
            return self._client

    def _summaries(self, client: Any, compartment_id: str) -> list[Any]:
        import oci

        pages = 0

        def one_page(*args: Any, **kwargs: Any) -> Any:
            nonlocal pages
            pages += 1
            if pages > MAX_PAGES:
                raise ListingError("error", f"more than {MAX_PAGES} pages in one compartment")
            try:
                return client.list_model_deployments(*args, **kwargs)
            except Exception as exc:
                raise classify_error(exc, self.endpoint_host) from None

        kwargs: dict[str, Any] = {
            "limit": self.config.page_limit,
            "retry_strategy": oci.retry.NoneRetryStrategy(),
        }
        if self.config.project_id:
            kwargs["project_id"] = self.config.project_id
        response = oci.pagination.list_call_get_all_results(one_page, compartment_id, **kwargs)
        return list(response.data or ())

    def list_deployments(self) -> tuple[DiscoveredDeployment, ...]:
        """Every deployment of every configured compartment (project-filtered), any state.

        Blocking. Raises `ListingError`.
        """
        try:
            client = self._current_client()
            found: dict[str, DiscoveredDeployment] = {}
            for compartment_id in self.config.compartment_ids:
                for summary in self._summaries(client, compartment_id):
                    deployment = from_summary(summary, region=self.config.region)
                    if self.config.project_id and deployment.project_id != self.config.project_id:
                        continue
                    found.setdefault(deployment.ocid, deployment)
        except ListingError:
            raise
        except Exception as exc:
            raise classify_error(exc, self.endpoint_host) from None
        return tuple(found.values())

    __call__ = list_deployments


def parse_compartments(raw: str) -> tuple[str, ...]:
    """OCI_COMPARTMENT_ID: one or more OCIDs, comma separated; duplicates dropped, order kept."""
    seen: dict[str, None] = {}
    for item in raw.split(","):
        if item.strip():
            seen.setdefault(item.strip(), None)
    return tuple(seen)


def compartment_problems(
    compartments: Sequence[str], setting: str = "OCI_COMPARTMENT_ID"
) -> list[str]:
    """One-line problems with the compartment OCIDs read from `setting` (settings validation)."""
    return [
        f"{setting}: {value!r} is not a compartment or tenancy OCID"
        for value in compartments
        if not value.startswith(("ocid1.compartment.", "ocid1.tenancy."))
    ]


def default_region(signer: Any, profile_region: str | None = None) -> str | None:
    """The credentials' own region when OCI_REGION is not set: principal signers know theirs
    (resource principal environment, instance metadata); config profiles carry `region`."""
    region = getattr(signer, "region", None)
    if isinstance(region, str) and region:
        return region
    return profile_region or None
