"""Paths the user typed: `~` and `~user` expanded without a traceback when the user is unknown."""

from __future__ import annotations

from pathlib import Path


class UnknownHome(ValueError):
    """`~name/...` names a user this system does not know."""


def expand_home(raw: str) -> Path:
    """`raw` with a leading `~` or `~user` expanded; UnknownHome (one line) when it cannot be."""
    try:
        return Path(raw).expanduser()
    except RuntimeError:  # pathlib: "Could not determine home directory."
        user = raw[1:].split("/", 1)[0]
        who = f"user {user!r}" if user else "the current user"
        raise UnknownHome(f"{raw}: cannot expand ~ (no home folder for {who})") from None
