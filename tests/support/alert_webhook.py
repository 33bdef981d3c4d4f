"""`AlertWebhook`: a recording webhook receiver on loopback, as a team's alert endpoint would be.

Alertmanager POSTs one JSON notification per group flush; every request is kept with its headers
and arrival time, so tests can check what arrived, when, and with which bearer token.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from testkit.background_server import BackgroundHTTPServer, QuietHandler


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]
    payload: dict[str, Any]
    received_at: float  # time.monotonic()

    @property
    def status(self) -> str:
        return str(self.payload.get("status"))

    def labels(self) -> list[dict[str, str]]:
        return [alert.get("labels", {}) for alert in self.payload.get("alerts", [])]

    def concerns(self, alertname: str, deployment: str) -> bool:
        return any(
            labels.get("alertname") == alertname and labels.get("deployment") == deployment
            for labels in self.labels()
        )


class AlertWebhook(BackgroundHTTPServer):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        super().__init__(_Handler)

    # Like Slack's or a chat tool's, the path is the credential: it must never be shown.
    SECRET_PATH = "/hooks/alerts-s3cr3t-path-0042"

    @property
    def url(self) -> str:
        return f"{self.base_url}{self.SECRET_PATH}"

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def matching(self, alertname: str, deployment: str, status: str) -> list[Delivery]:
        return [
            d for d in self.deliveries if d.status == status and d.concerns(alertname, deployment)
        ]

    def _record(self, delivery: Delivery) -> None:
        with self._lock:
            self._deliveries.append(delivery)


class _Handler(QuietHandler):
    owner: AlertWebhook

    def do_POST(self) -> None:
        body = self.read_body()
        try:
            payload = json.loads(body)
        except ValueError:
            payload = {"unparsable": body.decode(errors="replace")}
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.owner._record(Delivery(self.path, headers, payload, time.monotonic()))
        self.send_bytes(200, b"ok\n", {"Content-Type": "text/plain"})
