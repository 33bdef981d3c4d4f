"""Reading typed values from the environment, collecting problems instead of raising.

Every section of the settings reads through one `_Reader`, so a problem reads the same everywhere:
one line, `SETTING: what is wrong`, never containing a secret's value. Secrets accept a
`<NAME>__FILE` variant (the Docker/Kubernetes secrets convention) read here and nowhere else.
"""

from __future__ import annotations

import ipaddress
import math
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from app.errors import ConfigError
from app.paths import UnknownHome, expand_home

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$")
# ASCII only: Python's int() and float() also take other scripts' digits ("١٢٣"), "nan", "inf",
# "1_000" and surrounding spaces; a setting accepts none of them.
_WHOLE_NUMBER = re.compile(r"[0-9]+", re.ASCII)
_DECIMAL_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
_HOST_NAME = re.compile(
    r"(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?",
    re.ASCII,
)
SIZE = re.compile(r"^([0-9]+)(B|KB|MB|GB|TB|PB|EB)$", re.ASCII)
_SIZE_UNITS = ("B", "KB", "MB", "GB", "TB", "PB", "EB")
MAX_TIMEOUT_SECONDS = 3600.0
MAX_BODY_BYTES = 1 << 30  # 1 GiB: a metrics page is far smaller; more is a typo or an attack


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
                value = expand_home(file_name).read_text(encoding="utf-8").rstrip("\r\n")
            except UnknownHome as exc:
                self.problems.append(f"{name}__FILE: {exc}")
                return None
            except OSError as exc:
                self.problems.append(f"{name}__FILE: cannot read {file_name} ({exc.strerror})")
                return None
            except UnicodeDecodeError:
                self.problems.append(f"{name}__FILE: {file_name} is not UTF-8 text")
                return None
            if not value:
                self.problems.append(f"{name}__FILE: {file_name} is empty")
                return None
            return Secret(value)
        return Secret(direct) if direct else None

    def port(self, name: str, default: int) -> int:
        raw = self.text(name, str(default))
        if not _WHOLE_NUMBER.fullmatch(raw) or not 1 <= int(raw) <= 65535:
            self.problems.append(f"{name}: {raw!r} is not a port number (1-65535)")
            return default
        return int(raw)

    def positive_number(
        self, name: str, default: float, *, integer: bool = False, maximum: float
    ) -> float:
        """A finite number in (0, maximum], written in ASCII digits (no nan, inf, 1e3 or 1_000)."""
        raw = self.text(name, str(default))
        if raw.startswith("-") and _DECIMAL_NUMBER.fullmatch(raw[1:]):
            self.problems.append(f"{name}: must be greater than 0, got {raw!r}")
            return default
        pattern = _WHOLE_NUMBER if integer else _DECIMAL_NUMBER
        if not pattern.fullmatch(raw):
            kind = "a whole number" if integer else "a number"
            self.problems.append(f"{name}: {raw!r} is not {kind}")
            return default
        value = int(raw) if integer else float(raw)
        if value <= 0:
            self.problems.append(f"{name}: must be greater than 0, got {raw!r}")
            return default
        if not math.isfinite(value) or value > maximum:
            self.problems.append(f"{name}: {raw!r} is too large (at most {maximum:g})")
            return default
        return value

    def size(self, name: str, default: str, *, maximum: int) -> int:
        """Bytes in a size such as 512KB or 64MB (powers of 1024, as Prometheus reads them)."""
        raw = self.text(name, default).upper()
        match = SIZE.fullmatch(raw)
        if match is None or int(match.group(1)) == 0:
            self.problems.append(f"{name}: {raw!r} is not a size such as 512KB or 64MB")
            return parse_size(default) or 1
        value = parse_size(raw) or 0
        if value > maximum:
            self.problems.append(f"{name}: {raw!r} is too large (at most {maximum} bytes)")
            return parse_size(default) or 1
        return value

    def host(self, name: str, default: str) -> str:
        """An IP address, or a host name that resolves (an address to listen on)."""
        raw = self.text(name, default)
        problem = host_problem(raw)
        if problem is not None:
            self.problems.append(f"{name}: {problem}")
            return default
        return raw

    def path(self, name: str, default: str) -> Path:
        raw = self.text(name, default)
        try:
            return expand_home(raw)
        except UnknownHome as exc:
            self.problems.append(f"{name}: {exc}")
            return Path(raw)

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


def host_problem(host: str) -> str | None:
    """Why `host` cannot be listened on by name (None when it can): not a valid address or host
    name, or a name that does not resolve. Names under `.invalid` never resolve (RFC 6761), so
    they are refused without asking DNS."""
    candidate = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(candidate)
        return None
    except ValueError:
        pass
    if not _HOST_NAME.fullmatch(candidate):
        return f"{host!r} is not an IP address or a host name"
    if candidate.rstrip(".").lower().endswith(".invalid") or candidate.lower() == "invalid":
        return f"{host!r} does not resolve (a reserved .invalid name)"
    try:
        socket.getaddrinfo(candidate, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return f"{host!r} does not resolve to an address"
    return None


def parse_size(raw: str) -> int | None:
    """Bytes in a size such as 64MB (powers of 1024), or None when it is not one."""
    match = SIZE.fullmatch(raw.upper())
    if match is None:
        return None
    return int(match.group(1)) * 1024 ** _SIZE_UNITS.index(match.group(2))


def parse_duration(raw: str) -> float | None:
    """Seconds in a Prometheus-style duration (`1d2h3m4s5ms`), or None when it is not one."""
    match = _DURATION.match(raw)
    if not match or not raw:
        return None
    days, hours, minutes, seconds, millis = (int(group) if group else 0 for group in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds + millis / 1000
