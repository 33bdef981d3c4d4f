"""Is every component of the stack answering? Used by the image's HEALTHCHECK and by `start`.

Uses only the standard library: it runs every 30 s in the container and must start fast.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from dataclasses import dataclass

from app.settings import Settings

TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class ComponentHealth:
    name: str
    ok: bool
    detail: str


def _probe(name: str, url: str, headers: dict[str, str]) -> ComponentHealth:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (fixed loopback URLs)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return ComponentHealth(name, True, f"{response.status}")
    except urllib.error.HTTPError as exc:
        return ComponentHealth(name, False, f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return ComponentHealth(name, False, f"{type(reason).__name__}: {reason}")


def check_components(settings: Settings, grafana_enabled: bool) -> list[ComponentHealth]:
    proxy_address = settings.proxy.advertised_address
    results = [_probe("proxy", f"http://{proxy_address}/readyz", {})]
    prometheus_headers: dict[str, str] = {}
    password = settings.prometheus.basic_auth_password
    if settings.prometheus.expose and password is not None:
        token = base64.b64encode(
            f"{settings.prometheus.basic_auth_user}:{password.value}".encode()
        ).decode()
        prometheus_headers["Authorization"] = f"Basic {token}"
    results.append(
        _probe(
            "prometheus",
            f"http://127.0.0.1:{settings.prometheus.port}/-/ready",
            prometheus_headers,
        )
    )
    results.append(_probe("alertmanager", f"http://127.0.0.1:{settings.alerting.port}/-/ready", {}))
    if grafana_enabled:
        results.append(
            _probe("grafana", f"http://127.0.0.1:{settings.grafana.port}/api/health", {})
        )
    return results
