"""Reading typed values from the environment, collecting problems instead of raising.

Every section of the settings reads through one `_Reader`, so a problem reads the same everywhere:
one line, `SETTING: what is wrong`, never containing a secret's value. Secrets accept a
`<NAME>__FILE` variant (the Docker/Kubernetes secrets convention) read here and nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from app.errors import ConfigError

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$")


class SettingsError(ConfigError):
    """One or more environment variables are unusable; `problems` lists every one of them."""


@dataclass(frozen=True)
class Secret:
    """A value that must never be printed: its repr hides it."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__


class _Reader:
    """Reads typed values from the environment, collecting problems instead of raising."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []

    def text(self, name: str, default: str) -> str:
        value = self.environ.get(name)
        return default if value is None or value.strip() == "" else value.strip()

    def optional(self, name: str) -> str | None:
        value = self.environ.get(name)
        return value.strip() if value and value.strip() else None

    def secret(self, name: str) -> Secret | None:
        """`NAME` or `NAME__FILE` (a file holding it); both set is a problem."""
        direct = self.environ.get(name)
        file_name = self.environ.get(f"{name}__FILE")
        if direct and file_name:
            self.problems.append(f"{name}: set {name} or {name}__FILE, not both")
            return None
        if file_name:
            try:
                value = Path(file_name).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                self.problems.append(f"{name}__FILE: cannot read {file_name} ({exc.strerror})")
                return None
            if not value:
                self.problems.append(f"{name}__FILE: {file_name} is empty")
                return None
            return Secret(value)
        return Secret(direct) if direct else None

    def port(self, name: str, default: int) -> int:
        raw = self.text(name, str(default))
        if not raw.isdigit() or not 1 <= int(raw) <= 65535:
            self.problems.append(f"{name}: {raw!r} is not a port number (1-65535)")
            return default
        return int(raw)

    def positive_number(self, name: str, default: float, *, integer: bool = False) -> float:
        raw = self.text(name, str(default))
        try:
            value = int(raw) if integer else float(raw)
        except ValueError:
            kind = "a whole number" if integer else "a number"
            self.problems.append(f"{name}: {raw!r} is not {kind}")
            return default
        if value <= 0:
            self.problems.append(f"{name}: must be greater than 0, got {raw!r}")
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.text(name, "true" if default else "false").lower()
        if raw in {"1", "true", "yes", "on"}:
            return True
        if raw in {"0", "false", "no", "off"}:
            return False
        self.problems.append(f"{name}: {raw!r} is not true or false")
        return default

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        raw = self.text(name, default).lower()
        if raw not in choices:
            self.problems.append(f"{name}: {raw!r} is not one of {', '.join(choices)}")
            return default
        return raw

    def duration(self, name: str, default: str) -> tuple[str, float]:
        raw = self.text(name, default)
        seconds = parse_duration(raw)
        if seconds is None or seconds <= 0:
            self.problems.append(f"{name}: {raw!r} is not a duration such as 15s, 1m or 1h30m")
            return default, parse_duration(default) or 1.0
        return raw, seconds


def parse_duration(raw: str) -> float | None:
    """Seconds in a Prometheus-style duration (`1d2h3m4s5ms`), or None when it is not one."""
    match = _DURATION.match(raw)
    if not match or not raw:
        return None
    days, hours, minutes, seconds, millis = (int(group) if group else 0 for group in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds + millis / 1000
