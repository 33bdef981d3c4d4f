"""The compartment of a configured target, looked up once from its deployment OCID.

OCI Monitoring is read per compartment. Discovered deployments know theirs; a target given in
TARGET/TARGETS only carries its deployment OCID (and region) in its URL. When no compartment is
configured, each such deployment is looked up ONCE with the Data Science API's
GetModelDeployment (the proxy's signer; the region of the URL, else the credentials'), and its
compartment is cached for the life of the process. A failed lookup is retried with exponential
backoff (jittered), logged once per deployment and kind of failure, and again once it works.

Blocking (the SDK uses `requests`): `resolve` runs in the collector's worker thread at the start
of a round; `place` only reads the cache, for the event loop.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from app.monitoring.scope import Watched
from app.oci_clients import build_sdk_client, call_failure

log = logging.getLogger("app.monitoring")

INITIAL_BACKOFF_SECONDS = 30.0
MAX_BACKOFF_SECONDS = 900.0
LOOKUP_HINT = (
    "looking up a deployment needs an IAM policy such as 'allow dynamic-group <group> to read "
    "data-science-model-deployments in compartment <compartment>' (or set "
    "OCI_MONITORING_COMPARTMENT_ID)"
)


def build_datascience_client(signer: Any, region: str, endpoint: str | None) -> Any:
    """A DataScienceClient for `region` (or `endpoint`), without SDK retries."""
    import oci

    return build_sdk_client(
        oci.data_science.DataScienceClient, signer, region, timeout=(5.0, 30.0), endpoint=endpoint
    )


@dataclass(frozen=True)
class _Retry:
    at: float  # monotonic seconds of the next attempt
    backoff: float  # the wait after the next failure
    kind: str  # the failure last logged


class CompartmentLookup:
    """Finds and caches the compartment of deployments by OCID (see the module docstring).

    `endpoint` overrides the Data Science endpoint of every region (tests).
    """

    def __init__(
        self,
        signer_provider: Callable[[], Any],
        *,
        default_region: str | None,
        endpoint: str | None = None,
        client_factory: Callable[[Any, str, str | None], Any] = build_datascience_client,
        clock: Callable[[], float] = time.monotonic,
        initial_backoff: float = INITIAL_BACKOFF_SECONDS,
        max_backoff: float = MAX_BACKOFF_SECONDS,
        rng: random.Random | None = None,
    ) -> None:
        self._signer_provider = signer_provider
        self.default_region = default_region
        self.endpoint = endpoint
        self._client_factory = client_factory
        self._clock = clock
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._lock = threading.Lock()
        self._found: dict[str, str] = {}  # deployment OCID -> compartment OCID
        self._retry: dict[str, _Retry] = {}
        self.counts: Counter[str] = Counter()  # lookups by result (ok | a failure kind)

    def place(self, watched: Iterable[Watched]) -> list[Watched]:
        """`watched`, each with the compartment found for it (cache only, never a call)."""
        with self._lock:
            found = dict(self._found)
        return [
            w
            if w.compartment_id or w.ocid not in found
            else replace(w, compartment_id=found[w.ocid])
            for w in watched
        ]

    def resolve(self, watched: Iterable[Watched]) -> None:
        """Look up the deployments not found yet whose retry time has come (blocking)."""
        now = self._clock()
        for item in watched:
            with self._lock:
                done = item.compartment_id or item.ocid in self._found
                retry = self._retry.get(item.ocid)
            if done or (retry is not None and now < retry.at):
                continue
            self._look_up(item, retry)

    def _region(self, item: Watched) -> str | None:
        region = item.region or self.default_region
        if region is None and self.endpoint:
            return "us-ashburn-1"  # with the endpoint override the region only fills the config
        return region

    def _look_up(self, item: Watched, retry: _Retry | None) -> None:
        region = self._region(item)
        if region is None:
            self._failed(item, retry, "no_region", "its URL names no region to look it up in")
            return
        host = self.endpoint or f"datascience.{region}.oci.oraclecloud.com"
        try:
            client = self._client_factory(self._signer_provider(), region, self.endpoint)
            deployment = client.get_model_deployment(item.ocid).data
            compartment = str(deployment.compartment_id or "")
        except Exception as exc:
            kind, summary = call_failure(exc, host)
            self._failed(item, retry, kind, summary)
            return
        if not compartment:
            self._failed(item, retry, "error", "the answer names no compartment")
            return
        with self._lock:
            self._found[item.ocid] = compartment
            self._retry.pop(item.ocid, None)
            self.counts["ok"] += 1
        log.info(
            "oci-monitoring: %s is in compartment %s%s",
            item.name,
            compartment,
            " (found after failed lookups)" if retry is not None else "",
        )

    def _failed(self, item: Watched, retry: _Retry | None, kind: str, summary: str) -> None:
        backoff = self.initial_backoff if retry is None else retry.backoff
        delay = backoff * self._rng.uniform(0.8, 1.2)
        with self._lock:
            self._retry[item.ocid] = _Retry(
                self._clock() + delay, min(self.max_backoff, backoff * 2), kind
            )
            self.counts[kind] += 1
        if retry is None or retry.kind != kind:
            log.warning(
                "oci-monitoring: cannot look up the compartment of %s (%s: %s); retrying with "
                "backoff; %s",
                item.name,
                kind,
                summary,
                LOOKUP_HINT,
            )
