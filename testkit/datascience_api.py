"""`DataScienceApi`: a loopback stand-in of the OCI Data Science control plane (model deployments).

Serves `GET /20190101/modelDeployments` (ListModelDeployments) and
`GET /20190101/modelDeployments/{id}` (GetModelDeployment) the way the service does: every request must carry a valid
OCI signature (checked by the independent `cavage` verifier against a `KeyRegistry`; anything else
is 401 `NotAuthenticated`), `compartmentId` is required, at most ONE other filter (`id`,
`projectId`, `displayName`, `lifecycleState`, `createdBy`) may be given (400 otherwise), results
page with `limit` (1..100) / `page` and the `opc-next-page` header, and the JSON is the service's
`ModelDeploymentSummary` shape (camelCase, `deploymentType` / `policyType` /
`environmentConfigurationType` discriminators; GetModelDeployment adds `lifecycleDetails` and an
`etag` header, and answers 404 `NotAuthorizedOrNotFound` for an unknown deployment or one in a
denied compartment), so the real `oci` SDK parses it.

Tests change the fleet at run time (add, rename, delete, set state) and inject faults (429, 500,
404 for N requests, list or get, or until cleared) through a thread-safe Python API. Every request is recorded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from testkit.cavage import KeyRegistry, SignatureError, VerifiedSignature
from testkit.oci_credentials import fake_ocid
from testkit.oci_standin import (
    OCI_ERROR_CODES,
    SignedApiHandler,
    SignedApiServer,
    decode_page,
    encode_page,
    error_body,
)

LIST_PATH = "/20190101/modelDeployments"
GET_PREFIX = f"{LIST_PATH}/"
LIFECYCLE_STATES = (
    "CREATING",
    "ACTIVE",
    "DELETING",
    "FAILED",
    "INACTIVE",
    "UPDATING",
    "DELETED",
    "NEEDS_ATTENTION",
)
FILTER_PARAMS = {
    "id": "id",
    "projectId": "project_id",
    "displayName": "display_name",
    "lifecycleState": "lifecycle_state",
    "createdBy": "created_by",
}
VLLM_IMAGE = "dsmc://odsc-vllm-serving:0.22.1.1"
TGI_IMAGE = "dsmc://odsc-tgi-serving:2.0.1.4"
LLAMA_CPP_IMAGE = "dsmc://odsc-llama-cpp-serving:0.3.7.1"
_MESSAGES = {
    401: "The required information to complete authentication was not provided or was incorrect.",
    404: "Authorization failed or requested resource not found.",
    429: "Too many requests for the user.",
    500: "Internal Server Error.",
    503: "Service Unavailable.",
}


@dataclass(frozen=True)
class Deployment:
    """One model deployment as the service stores it (fields named like the SDK's snake_case)."""

    id: str
    display_name: str
    compartment_id: str
    project_id: str
    model_deployment_url: str
    lifecycle_state: str = "ACTIVE"
    freeform_tags: dict[str, str] = field(default_factory=dict)
    defined_tags: dict[str, dict[str, Any]] = field(default_factory=dict)
    time_created: datetime = field(default_factory=lambda: datetime.now(UTC))
    created_by: str = ""
    model_id: str = ""
    instance_shape_name: str = "VM.GPU.A10.2"
    instance_count: int = 1
    bandwidth_mbps: int = 10
    image: str | None = VLLM_IMAGE
    environment_variables: dict[str, str] = field(default_factory=dict)
    description: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The `ModelDeploymentSummary` JSON the service answers with."""
        environment: dict[str, Any]
        if self.image is None:
            environment = {"environmentConfigurationType": "DEFAULT", "environmentVariables": {}}
        else:
            environment = {
                "environmentConfigurationType": "OCIR_CONTAINER",
                "image": self.image,
                "imageDigest": None,
                "cmd": [],
                "entrypoint": [],
                "serverPort": 8080,
                "healthCheckPort": 8080,
                "environmentVariables": dict(self.environment_variables),
            }
        return {
            "id": self.id,
            "timeCreated": self.time_created.isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"
            ),
            "displayName": self.display_name,
            "description": self.description,
            "projectId": self.project_id,
            "createdBy": self.created_by,
            "compartmentId": self.compartment_id,
            "modelDeploymentConfigurationDetails": {
                "deploymentType": "SINGLE_MODEL",
                "modelConfigurationDetails": {
                    "modelId": self.model_id,
                    "instanceConfiguration": {
                        "instanceShapeName": self.instance_shape_name,
                        "modelDeploymentInstanceShapeConfigDetails": None,
                        "subnetId": None,
                    },
                    "scalingPolicy": {
                        "policyType": "FIXED_SIZE",
                        "instanceCount": self.instance_count,
                    },
                    "bandwidthMbps": self.bandwidth_mbps,
                    "maximumBandwidthMbps": self.bandwidth_mbps,
                },
                "environmentConfigurationDetails": environment,
            },
            "categoryLogDetails": None,
            "modelDeploymentSystemData": None,
            "modelDeploymentUrl": self.model_deployment_url,
            "lifecycleState": self.lifecycle_state,
            "freeformTags": dict(self.freeform_tags),
            "definedTags": {ns: dict(tags) for ns, tags in self.defined_tags.items()},
        }

    def to_full_json(self) -> dict[str, Any]:
        """The `ModelDeployment` JSON GetModelDeployment answers with (the summary's fields and
        `lifecycleDetails`)."""
        return {**self.to_json(), "lifecycleDetails": None}


@dataclass(frozen=True)
class Fault:
    """After letting `skip` list requests through, answer `status` (OCI error JSON) to the next
    `remaining` ones (None: until cleared)."""

    status: int
    remaining: int | None = None
    skip: int = 0


@dataclass(frozen=True)
class RecordedCall:
    """One request as it arrived and how it was answered."""

    method: str
    target: str
    query: dict[str, list[str]]
    status: int
    verified: VerifiedSignature | None
    error: str | None


def aqua_tags(model_name: str) -> dict[str, str]:
    """Freeform tags AQUA puts on a deployment of `model_name`."""
    return {"OCI_AQUA": "active", "aqua_model_name": model_name}


class DataScienceApi(SignedApiServer[RecordedCall]):
    """The control-plane stand-in; use as a context manager.

    Point the SDK at it with `DataScienceClient(config, signer=..., service_endpoint=api.endpoint)`.
    `default_limit` is the page size when a request gives no `limit`; `max_limit` caps any
    requested limit (100 on the real service; lower it to make tests page with `limit=100`).
    """

    def __init__(
        self,
        registry: KeyRegistry,
        *,
        region: str = "us-ashburn-1",
        default_limit: int = 10,
        max_limit: int = 100,
        max_skew_seconds: float = 300,
    ) -> None:
        self.region = region
        self.default_limit = default_limit
        self.max_limit = max_limit
        self._deployments: dict[str, Deployment] = {}
        self._fault: Fault | None = None
        self._clock_base = datetime(2026, 1, 1, tzinfo=UTC)
        self._created = 0
        super().__init__(registry, _Handler, max_skew_seconds=max_skew_seconds)

    # ---- the fleet ---------------------------------------------------------------------------

    def add(
        self,
        display_name: str,
        *,
        compartment_id: str,
        project_id: str | None = None,
        url: str | None = None,
        aqua_model: str | None = None,
        aqua: bool = True,
        **fields: Any,
    ) -> Deployment:
        """Create a deployment (ACTIVE unless `lifecycle_state` says otherwise) and return it.

        `aqua=True` adds AQUA's tags (`OCI_AQUA`, `aqua_model_name`); `url` defaults to a
        loopback URL on this server, which nothing here answers (tests pass real upstream URLs).
        """
        ocid = fields.pop("id", None) or fake_ocid("datasciencemodeldeployment", "iad")
        tags = dict(fields.pop("freeform_tags", {}))
        if aqua:
            tags.update(aqua_tags(aqua_model or display_name))
        with self._lock:
            self._created += 1
            created = fields.pop(
                "time_created", self._clock_base + timedelta(seconds=self._created)
            )
        deployment = Deployment(
            id=ocid,
            display_name=display_name,
            compartment_id=compartment_id,
            project_id=project_id or fake_ocid("datascienceproject", "iad"),
            model_deployment_url=url or f"{self.base_url}/md/{ocid}",
            freeform_tags=tags,
            time_created=created,
            created_by=fields.pop("created_by", fake_ocid("user")),
            model_id=fields.pop("model_id", fake_ocid("datasciencemodel", "iad")),
            **fields,
        )
        with self._lock:
            self._deployments[ocid] = deployment
        return deployment

    def update(self, ocid: str, **changes: Any) -> Deployment:
        """Change fields of a deployment (any `Deployment` field)."""
        with self._lock:
            updated = replace(self._deployments[ocid], **changes)
            self._deployments[ocid] = updated
            return updated

    def rename(self, ocid: str, display_name: str) -> Deployment:
        return self.update(ocid, display_name=display_name)

    def set_state(self, ocid: str, lifecycle_state: str) -> Deployment:
        if lifecycle_state not in LIFECYCLE_STATES:
            raise ValueError(f"unknown lifecycle state {lifecycle_state}")
        return self.update(ocid, lifecycle_state=lifecycle_state)

    def delete(self, ocid: str) -> None:
        """Remove a deployment from listings altogether (as once DELETED ones age out)."""
        with self._lock:
            del self._deployments[ocid]

    def deployments(self) -> list[Deployment]:
        with self._lock:
            return list(self._deployments.values())

    # ---- faults ------------------------------------------------------------------------------

    def fail(self, status: int, *, times: int | None = None, after: int = 0) -> None:
        """Answer `status` to `times` list requests (None: until `clear_fault`), starting after
        `after` more requests have been served normally (e.g. 1: the second page fails)."""
        if status not in OCI_ERROR_CODES:
            raise ValueError(f"no OCI error code known for {status}")
        with self._lock:
            self._fault = Fault(status, times, after)

    def clear_fault(self) -> None:
        with self._lock:
            self._fault = None

    # ---- internals used by the handler -------------------------------------------------------

    def _take_fault(self) -> int | None:
        with self._lock:
            fault = self._fault
            if fault is None:
                return None
            if fault.skip > 0:
                self._fault = replace(fault, skip=fault.skip - 1)
                return None
            if fault.remaining is not None:
                left = fault.remaining - 1
                self._fault = None if left <= 0 else replace(fault, remaining=left)
            return fault.status

    def _select(self, compartment: str, filters: dict[str, str], sort_by: str, order: str) -> list:
        with self._lock:
            rows = [d for d in self._deployments.values() if d.compartment_id == compartment]
        for param, value in filters.items():
            attribute = FILTER_PARAMS[param]
            rows = [d for d in rows if getattr(d, attribute) == value]
        if sort_by == "displayName":
            rows.sort(key=lambda d: (d.display_name, d.id), reverse=order == "DESC")
        else:
            rows.sort(key=lambda d: (d.time_created, d.id), reverse=order != "ASC")
        return rows


class _Handler(SignedApiHandler):
    owner: DataScienceApi

    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _serve(self) -> None:
        api = self.owner
        body = self.read_body()
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        verified: VerifiedSignature | None = None
        try:
            verified = self.verify_signature(body)
        except SignatureError as exc:
            self._answer(401, None, query, verified, exc.reason)
            return
        one_id = parts.path[len(GET_PREFIX) :] if parts.path.startswith(GET_PREFIX) else None
        if parts.path != LIST_PATH and (not one_id or "/" in one_id):
            self._answer(404, None, query, verified, "unknown path")
            return
        if self.command != "GET":
            self._answer(404, None, query, verified, f"method {self.command}")
            return
        fault = api._take_fault()
        if fault is not None:
            self._answer(fault, None, query, verified, "injected fault")
            return
        if one_id is not None:
            self._get(api, one_id, query, verified)
        else:
            self._list(api, query, verified)

    def _get(
        self,
        api: DataScienceApi,
        ocid: str,
        query: dict[str, list[str]],
        verified: VerifiedSignature,
    ) -> None:
        with api._lock:
            deployment = api._deployments.get(ocid)
        if deployment is None or api._is_denied(deployment.compartment_id):
            self._answer(404, None, query, verified, "deployment not found or not authorized")
            return
        digest = hashlib.sha256(json.dumps(deployment.to_json(), sort_keys=True).encode())
        etag = f'"{digest.hexdigest()[:32]}"'
        self._answer(200, deployment.to_full_json(), query, verified, None, headers={"etag": etag})

    def _list(
        self, api: DataScienceApi, query: dict[str, list[str]], verified: VerifiedSignature
    ) -> None:
        def one(name: str) -> str | None:
            values = query.get(name)
            return values[-1] if values else None

        compartment = one("compartmentId")
        if not compartment:
            self._answer(
                400, None, query, verified, "compartmentId missing", code="MissingParameter"
            )
            return
        filters = {name: one(name) for name in FILTER_PARAMS if one(name) is not None}
        if len(filters) > 1:
            self._answer(400, None, query, verified, "more than one filter besides compartmentId")
            return
        state = filters.get("lifecycleState")
        if state is not None and state not in LIFECYCLE_STATES:
            self._answer(400, None, query, verified, f"invalid lifecycleState {state}")
            return
        raw_limit = one("limit")
        if raw_limit is not None and (not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100):
            self._answer(400, None, query, verified, "limit must be 1..100")
            return
        limit = min(int(raw_limit) if raw_limit else api.default_limit, api.max_limit)
        offset = 0
        token = one("page")
        if token is not None:
            decoded = decode_page(token)
            if decoded is None:
                self._answer(400, None, query, verified, "invalid page token")
                return
            offset = decoded
        if api._is_denied(compartment):
            self._answer(404, None, query, verified, "compartment not authorized")
            return
        rows = api._select(
            compartment, filters, one("sortBy") or "timeCreated", one("sortOrder") or ""
        )
        page = rows[offset : offset + limit]
        headers = {}
        if offset + limit < len(rows):
            headers["opc-next-page"] = encode_page(offset + limit)
        payload = [deployment.to_json() for deployment in page]
        self._answer(200, payload, query, verified, None, headers=headers)

    def _answer(
        self,
        status: int,
        payload: Any,
        query: dict[str, list[str]],
        verified: VerifiedSignature | None,
        error: str | None,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.owner._record(RecordedCall(self.command, self.path, query, status, verified, error))
        if status != 200:
            payload = error_body(status, _MESSAGES.get(status, error or "Invalid parameter."), code)
        self.send_json(status, payload, headers)
