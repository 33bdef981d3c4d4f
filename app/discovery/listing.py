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
from app.targets import is_loopback_host

PAGE_LIMIT = 100
MAX_PAGES = 1000  # 100,000 deployments per compartment: a guard against a looping page token
LISTING_KINDS = (
    "throttled",
    "server_error",
    "timeout",
    "unreachable",
    "not_authenticated",
    "not_authorized",
    "bad_request",
)
POLICY_HINT = (
    "listing needs an IAM policy such as 'allow dynamic-group <group> to read "
    "data-science-model-deployments in compartment <compartment>' (or 'any-user ... where "
    "request.principal.id = ...'); check OCI_COMPARTMENT_ID too"
)


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


def client_config(signer: Any, region: str) -> dict[str, str]:
    """The SDK client's `config` for an explicit signer.

    The SDK validates `config` unless the signer is a token/key-pair signer; for an API-key
    `oci.signer.Signer` it wants the profile's keys, which the signer's own key id
    (`<tenancy>/<user>/<fingerprint>`) supplies. The key file itself is never read again.
    """
    config = {"region": region}
    key_id = str(getattr(signer, "api_key", ""))
    parts = key_id.split("/")
    if len(parts) == 3 and not key_id.startswith(("ST$", "resource/")):
        tenancy, user, fingerprint = parts
        config.update(
            tenancy=tenancy, user=user, fingerprint=fingerprint, key_file="(held by the signer)"
        )
    return config


def build_client(signer: Any, config: ListingConfig) -> Any:
    """A `DataScienceClient` for `signer`, without the SDK's retries and circuit breaker."""
    import oci

    kwargs: dict[str, Any] = {
        "signer": signer,
        "timeout": (config.connect_timeout, config.read_timeout),
        "circuit_breaker_strategy": oci.circuit_breaker.NoCircuitBreakerStrategy(),
    }
    if config.endpoint:
        kwargs["service_endpoint"] = config.endpoint.rstrip("/")
    return oci.data_science.DataScienceClient(client_config(signer, config.region), **kwargs)


def classify_error(exc: BaseException, endpoint_host: str) -> ListingError:
    """Turn an SDK/transport exception into a counted kind with a one-line hint (no secrets)."""
    import oci

    if isinstance(exc, oci.exceptions.ServiceError):
        status, code = exc.status, exc.code or ""
        described = f"HTTP {status} {code}".strip()
        if status == 429:
            return ListingError("throttled", described, "the Data Science API is throttling")
        if status >= 500:
            return ListingError("server_error", described, "the Data Science API failed")
        if status == 401:
            return ListingError(
                "not_authenticated",
                described,
                "the API refused the request signature: check the credentials (OCI_AUTH), "
                "an expired session token, a deleted API key or the clock",
            )
        if status in (403, 404):
            return ListingError("not_authorized", described, POLICY_HINT)
        return ListingError("bad_request", described, "check OCI_COMPARTMENT_ID")
    name = type(exc).__name__
    # The SDK re-raises a read timeout as a plain RequestException; its text says so (the text
    # is only inspected here, never logged).
    timed_out = "timed out" in str(exc).lower() or "Timeout" in name
    if isinstance(exc, oci.exceptions.ConnectTimeout) or timed_out:
        return ListingError(
            "timeout",
            f"no answer from {endpoint_host} in time ({name})",
            "check OCI_REGION / OCI_DATA_SCIENCE_ENDPOINT and the network path",
        )
    if isinstance(exc, oci.exceptions.RequestException | ConnectionError | OSError):
        return ListingError(
            "unreachable",
            f"cannot reach {endpoint_host} ({name})",
            "check OCI_REGION / OCI_DATA_SCIENCE_ENDPOINT and the network path",
        )
    return ListingError("error", f"unexpected {name}")


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


def compartment_problems(compartments: Sequence[str]) -> list[str]:
    """One-line problems with OCI_COMPARTMENT_ID values (for settings validation)."""
    return [
        f"OCI_COMPARTMENT_ID: {value!r} is not a compartment or tenancy OCID"
        for value in compartments
        if not value.startswith(("ocid1.compartment.", "ocid1.tenancy."))
    ]


def endpoint_problem(endpoint: str) -> str | None:
    """A one-line problem with OCI_DATA_SCIENCE_ENDPOINT, or None: https only, except loopback."""
    try:
        parts = urlsplit(endpoint.strip())
        parts.port  # noqa: B018 - parsed to reject a malformed port
    except ValueError:
        return f"OCI_DATA_SCIENCE_ENDPOINT: {endpoint!r} is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"OCI_DATA_SCIENCE_ENDPOINT: {endpoint!r} is not an http(s) URL"
    if parts.username is not None or parts.password is not None:
        return "OCI_DATA_SCIENCE_ENDPOINT: must not carry user:password"
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        return (
            f"OCI_DATA_SCIENCE_ENDPOINT: {endpoint!r} uses plain http; only https is allowed, "
            "except for loopback hosts"
        )
    if parts.path.strip("/") or parts.query or parts.fragment:
        return f"OCI_DATA_SCIENCE_ENDPOINT: give only scheme://host[:port], not {endpoint!r}"
    return None


def default_region(signer: Any, profile_region: str | None = None) -> str | None:
    """The credentials' own region when OCI_REGION is not set: principal signers know theirs
    (resource principal environment, instance metadata); config profiles carry `region`."""
    region = getattr(signer, "region", None)
    if isinstance(region, str) and region:
        return region
    return profile_region or None
