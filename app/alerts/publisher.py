"""Publishes a message to the OCI Notifications topic with the proxy's own credentials.

The SDK's `NotificationDataPlaneClient.publish_message` signs the POST (body headers included)
with the signer the proxy already uses, asked for anew at each publish so renewed session tokens
are used. It blocks: callers run it in a thread. No SDK retries and no circuit breaker:
Alertmanager retries a failed notification itself, and the proxy must report every failure.
"""

from __future__ import annotations

from typing import Any

from app.alerts.message import NotificationMessage
from app.credentials import Credentials
from app.oci_clients import build_sdk_client

CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 30.0


class PublishFailure(Exception):
    """Publishing failed; `kind` is a fixed word for metrics, `detail` a short line for logs."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def topic_region(topic_id: str) -> str:
    """The region a topic lives in, from its OCID (`ocid1.onstopic.oc1.iad.<id>` -> us-ashburn-1)."""
    from oci.regions import get_region_from_short_name

    return str(get_region_from_short_name(topic_id.split(".")[3]))


class NotificationsPublisher:
    def __init__(self, topic_id: str, endpoint: str | None, credentials: Credentials) -> None:
        self.topic_id = topic_id
        self.endpoint = endpoint
        self.credentials = credentials

    def _client(self) -> Any:
        import oci

        return build_sdk_client(
            oci.ons.NotificationDataPlaneClient,
            self.credentials.sdk_signer,
            topic_region(self.topic_id),
            timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
            endpoint=self.endpoint,
        )

    def publish(self, message: NotificationMessage) -> str:
        """Publish one message; return its message id. Blocking. Raises PublishFailure."""
        import oci

        details = oci.ons.models.MessageDetails(title=message.title, body=message.body)
        try:
            response = self._client().publish_message(self.topic_id, details)
        except oci.exceptions.ServiceError as exc:
            kind = "refused" if exc.status in (401, 404) else "service_error"
            raise PublishFailure(kind, f"HTTP {exc.status} {exc.code}") from None
        except oci.exceptions.ConnectTimeout:
            raise PublishFailure("timeout", "no connection in time") from None
        except oci.exceptions.RequestException as exc:
            # The SDK wraps the transport's exception (read timeout, refused connection...).
            cause = type(exc.args[0]).__name__ if exc.args else type(exc).__name__
            kind = "timeout" if "Timeout" in cause else "connect"
            raise PublishFailure(kind, cause) from None
        return str(response.data.message_id)
