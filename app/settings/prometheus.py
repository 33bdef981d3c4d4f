"""Prometheus' settings: its port, whether it is exposed (and the login guarding it), retention."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.settings.reader import Secret, _Reader, parse_size

MAX_RETENTION_BYTES = 2**63 - 1
_BASIC_AUTH_USER = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class BasicAuthLogin:
    """The basic-auth login that guards an exposed Prometheus."""

    user: str
    password: Secret


@dataclass(frozen=True)
class PrometheusSettings:
    port: int
    expose: bool
    basic_auth_user: str
    basic_auth_password: Secret | None
    retention_time: str
    retention_size: str
    binary: str | None

    @property
    def listen_host(self) -> str:
        return "0.0.0.0" if self.expose else "127.0.0.1"

    @property
    def login(self) -> BasicAuthLogin | None:
        """The login guarding Prometheus when it is exposed (`load_settings` requires the
        password then); None when it listens on loopback only."""
        if not self.expose or self.basic_auth_password is None:
            return None
        return BasicAuthLogin(self.basic_auth_user, self.basic_auth_password)


def read_prometheus(read: _Reader) -> PrometheusSettings:
    """PROMETHEUS_*; problems go to `read.problems`."""
    expose = read.boolean("PROMETHEUS_EXPOSE", False)
    basic_user = read.text("PROMETHEUS_BASIC_AUTH_USER", "prometheus")
    basic_password = read.secret("PROMETHEUS_BASIC_AUTH_PASSWORD")
    if not _BASIC_AUTH_USER.match(basic_user):
        read.problems.append(
            "PROMETHEUS_BASIC_AUTH_USER: use 1-64 letters, digits, '.', '_' or '-'"
        )
    if expose and basic_password is None:
        read.problems.append(
            "PROMETHEUS_EXPOSE: exposing Prometheus requires PROMETHEUS_BASIC_AUTH_PASSWORD "
            "(or PROMETHEUS_BASIC_AUTH_PASSWORD__FILE)"
        )
    retention_time, _ = read.duration("PROMETHEUS_RETENTION_TIME", "15d")
    retention_size = read.text("PROMETHEUS_RETENTION_SIZE", "2GB").upper()
    retention_bytes = parse_size(retention_size)
    if not retention_bytes:  # not a size, or zero
        read.problems.append(
            f"PROMETHEUS_RETENTION_SIZE: {retention_size!r} is not a size such as 512MB or 2GB"
        )
    elif retention_bytes > MAX_RETENTION_BYTES:
        read.problems.append(
            f"PROMETHEUS_RETENTION_SIZE: {retention_size!r} is too large (Prometheus counts it "
            "in int64 bytes)"
        )
    return PrometheusSettings(
        port=read.port("PROMETHEUS_PORT", 9090),
        expose=expose,
        basic_auth_user=basic_user,
        basic_auth_password=basic_password,
        retention_time=retention_time,
        retention_size=retention_size,
        binary=read.optional("PROMETHEUS_BIN"),
    )
