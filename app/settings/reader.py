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

# ASCII only: `\d`, str.isdigit(), int() and float() also take other scripts' digits ("١٢٣", "²"),
# and int() and float() "nan", "inf", "1_000" and surrounding spaces; a setting accepts none of them.
_DURATION = re.compile(
    r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m(?!s))?(?:([0-9]+)s)?(?:([0-9]+)ms)?", re.ASCII
)
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
WHOLE_NUMBER_CEILING = 10**18
# Prometheus holds a duration in int64 nanoseconds and refuses a longer one (about 292 years).
MAX_DURATION_SECONDS = (2**63 - 1) // 10**9
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
            _, text = self.text_file(f"{name}__FILE", file_name, strip="\r\n")
            return Secret(text) if text is not None else None
        return Secret(direct) if direct else None

    def text_file(self, name: str, raw: str, *, strip: str = "") -> tuple[Path | None, str | None]:
        """The path setting `name` gives (`~` expanded) and the UTF-8 text of that file, its end
        stripped of `strip`; text None, and one problem, when it cannot be read, is not UTF-8 or
        is empty (path None too when `~user` names no user). The one reader of every file a
        setting names."""
        try:
            path = expand_home(raw)
        except UnknownHome as exc:
            self.problems.append(f"{name}: {exc}")
            return None, None
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            self.problems.append(f"{name}: cannot read {raw} ({exc.strerror})")
            return path, None
        except UnicodeDecodeError:
            self.problems.append(f"{name}: {raw} is not UTF-8 text")
            return path, None
        text = text.rstrip(strip) if strip else text
        if not text.strip():
            self.problems.append(f"{name}: {raw} is empty")
            return path, None
        return path, text

    def port(self, name: str, default: int) -> int:
        raw = self.text(name, str(default))
        number = whole_number(raw)
        if number is None or not 1 <= number <= 65535:
            self.problems.append(f"{name}: {raw!r} is not a port number (1-65535)")
            return default
        return number

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
        value = (whole_number(raw) or 0) if integer else float(raw)
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
        value = parse_size(raw)
        if not value:  # not a size, or zero
            self.problems.append(f"{name}: {raw!r} is not a size such as 512KB or 64MB")
            return parse_size(default) or 1
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
        if seconds > MAX_DURATION_SECONDS:
            self.problems.append(f"{name}: {raw!r} is too long (Prometheus' limit is 292 years)")
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


def whole_number(raw: str) -> int | None:
    """The value of `raw` when it is written in ASCII digits only (no sign, space or `_`), else
    None: the one reading of a whole number a setting holds. Saturates at WHOLE_NUMBER_CEILING,
    beyond every setting's maximum, so a value of thousands of digits reads as too large instead
    of tripping int()'s 4300-digit limit (a ValueError)."""
    if not _WHOLE_NUMBER.fullmatch(raw):
        return None
    significant = raw.lstrip("0")
    if len(significant) > len(str(WHOLE_NUMBER_CEILING)):
        return WHOLE_NUMBER_CEILING
    return min(int(significant or "0"), WHOLE_NUMBER_CEILING)


def parse_size(raw: str) -> int | None:
    """Bytes in a size such as 64MB (powers of 1024), or None when it is not one."""
    match = SIZE.fullmatch(raw.upper())
    if match is None:
        return None
    return (whole_number(match.group(1)) or 0) * 1024 ** _SIZE_UNITS.index(match.group(2))


def parse_duration(raw: str) -> float | None:
    """Seconds in a Prometheus-style duration (`1d2h3m4s5ms`), or None when it is not one."""
    match = _DURATION.fullmatch(raw)
    if not match or not raw:
        return None
    days, hours, minutes, seconds, millis = (
        (whole_number(group) or 0) if group else 0 for group in match.groups()
    )
    return days * 86400 + hours * 3600 + minutes * 60 + seconds + millis / 1000
