"""`NotificationsApi`: a loopback stand-in of the OCI Notifications data plane (publish only).

Serves `POST /20181201/topics/{topicId}/messages` the way the service does: the request must carry
a valid OCI signature over the body too (`content-length`, `content-type`, `x-content-sha256`;
checked by the independent `testkit.cavage` verifier against a `KeyRegistry`; anything else is
401 `NotAuthenticated`), an unknown topic is 404 `NotAuthorizedOrNotFound`, the body must be a
`MessageDetails` JSON object (`body` required, `title` optional), and a publish answers 200 with a
`PublishResult` (`messageId`, `timeStamp`) that the real `oci` SDK parses
(tests/test_support_notifications_api.py drives the SDK client against it).

Tests make it fail for a while (`fail_next(n, status)`) and read what arrived (`messages`, every
request with its verification outcome in `calls`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

from testkit.cavage import KeyRegistry, SignatureError, VerifiedSignature
from testkit.oci_standin import SignedApiHandler, SignedApiServer, error_body

API_PREFIX = "/20181201/topics/"
_MESSAGES = {
    400: "Invalid parameter.",
    401: "The required information to complete authentication was not provided.",
    404: "Authorization failed or requested resource not found.",
    429: "Too many requests.",
    500: "Internal Server Error.",
    503: "Service Unavailable.",
}


@dataclass(frozen=True)
class PublishedMessage:
    """A message the stand-in accepted."""

    message_id: str
    topic_id: str
    title: str | None
    body: str
    verified: VerifiedSignature


@dataclass(frozen=True)
class Call:
    """One request and its answer (`error` says why it was refused)."""

    method: str
    target: str
    status: int
    verified: VerifiedSignature | None
    error: str | None


class NotificationsApi(SignedApiServer[Call]):
    """Use as a context manager; point the SDK (or OCI_NOTIFICATIONS_ENDPOINT) at `endpoint`."""

    def __init__(self, registry: KeyRegistry, topics: set[str]) -> None:
        self.topics = set(topics)
        self._messages: list[PublishedMessage] = []
        self._failures: list[int] = []
        super().__init__(registry, _Handler)

    def fail_next(self, count: int, status: int = 500) -> None:
        """Answer `status` to the next `count` publishes that are otherwise valid."""
        with self._lock:
            self._failures = [status] * count

    @property
    def failures_left(self) -> int:
        with self._lock:
            return len(self._failures)

    @property
    def messages(self) -> list[PublishedMessage]:
        with self._lock:
            return list(self._messages)

    def _take_failure(self) -> int | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def _record(self, call: Call, message: PublishedMessage | None = None) -> None:
        with self._lock:
            self._calls.append(call)
            if message is not None:
                self._messages.append(message)


class _Handler(SignedApiHandler):
    owner: NotificationsApi

    def do_POST(self) -> None:
        self._serve()

    do_GET = do_PUT = do_DELETE = do_PATCH = do_POST

    def _serve(self) -> None:
        api = self.owner
        body = self.read_body()
        try:
            verified = self.verify_signature(body)
        except SignatureError as exc:
            self._error(401, None, exc.reason)
            return
        path = urlsplit(self.path).path
        topic, _, rest = path.removeprefix(API_PREFIX).partition("/")
        if not path.startswith(API_PREFIX) or rest != "messages" or self.command != "POST":
            self._error(404, verified, "unknown path or method")
            return
        topic = unquote(topic)
        if topic not in api.topics:
            self._error(404, verified, "unknown topic")
            return
        if not (self.headers.get("content-type") or "").startswith("application/json"):
            self._error(400, verified, "content-type is not application/json")
            return
        try:
            details = json.loads(body)
        except ValueError:
            self._error(400, verified, "body is not JSON")
            return
        if not isinstance(details, dict) or not isinstance(details.get("body"), str):
            self._error(400, verified, "MessageDetails.body is required")
            return
        title = details.get("title")
        if title is not None and not isinstance(title, str):
            self._error(400, verified, "MessageDetails.title must be a string")
            return
        failure = api._take_failure()
        if failure is not None:
            self._error(failure, verified, "injected failure")
            return
        message_id = f"ocid1.onsmessage.oc1..{uuid.uuid4().hex}"
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        api._record(
            Call(self.command, self.path, 200, verified, None),
            PublishedMessage(message_id, topic, title, details["body"], verified),
        )
        self._json(200, {"messageId": message_id, "timeStamp": stamp})

    def _error(self, status: int, verified: VerifiedSignature | None, reason: str) -> None:
        self.owner._record(Call(self.command, self.path, status, verified, reason))
        self._json(status, error_body(status, _MESSAGES.get(status, reason)))

    def _json(self, status: int, payload: dict[str, str]) -> None:
        self.send_json(status, payload, request_id=lambda: uuid.uuid4().hex.upper())
