"""`amtool check-config`: Alertmanager's own validation, run before anything starts.

Its output can quote parts of the file; every configured secret is replaced by `<secret>` before a
line of it is shown, and only the first error line is kept (one line per problem).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path

CHECK_TIMEOUT_SECONDS = 30


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value replaced by `<secret>` (longest first)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "<secret>")
    return text


def check_config(amtool: Path, config: Path, secrets: Iterable[str]) -> str | None:
    """None when amtool accepts `config`, else its first error line, scrubbed of secrets."""
    try:
        result = subprocess.run(
            [str(amtool), "check-config", str(config)],
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"amtool check-config could not run ({type(exc).__name__})"
    if result.returncode == 0:
        return None
    return scrub(_first_error(result.stdout + "\n" + result.stderr, result.returncode), secrets)


def _first_error(output: str, code: int) -> str:
    """The text after `FAILED` and its continuation lines (amtool wraps yaml errors), as one line."""
    lines = [line.strip() for line in output.splitlines()]
    for index, line in enumerate(lines):
        if "FAILED" in line:
            parts = [line.split("FAILED", 1)[1].strip(" :")]
            for follow in lines[index + 1 :]:
                if not follow or follow.startswith("amtool:"):
                    break
                parts.append(follow)
            return " ".join(part for part in parts if part)
    return next((line for line in lines if line), f"exit code {code}")
