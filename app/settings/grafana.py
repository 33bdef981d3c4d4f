"""Grafana's settings: its port, whether it runs, anonymous viewing, the admin password."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from app.settings.reader import Secret, _Reader


@dataclass(frozen=True)
class GrafanaSettings:
    port: int
    enabled: str  # auto | true | false
    anonymous_viewer: bool
    admin_password: Secret | None
    home: str | None
    binary: str | None


def read_grafana(read: _Reader, env: Mapping[str, str]) -> GrafanaSettings:
    """GRAFANA_* and GF_*; problems go to `read.problems`."""
    grafana = GrafanaSettings(
        port=read.port("GRAFANA_PORT", 3000),
        enabled=read.choice("GRAFANA_ENABLED", "auto", ("auto", "true", "false")),
        anonymous_viewer=read.boolean("GRAFANA_ANONYMOUS_VIEWER", False),
        admin_password=read.secret("GF_SECURITY_ADMIN_PASSWORD"),
        home=read.optional("GRAFANA_HOME"),
        binary=read.optional("GRAFANA_BIN"),
    )
    anonymous_role = env.get("GF_AUTH_ANONYMOUS_ORG_ROLE", "Viewer").strip().lower()
    if anonymous_role not in {"", "viewer"}:
        read.problems.append(
            "GF_AUTH_ANONYMOUS_ORG_ROLE: anonymous users may only be Viewer; "
            "use GRAFANA_ANONYMOUS_VIEWER=true and real accounts for editing"
        )
    return grafana
