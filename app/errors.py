"""The one base class for configuration problems, so the command line catches a single type.

Settings, targets, credentials and start-up checks each raise a subclass. Every problem is one line
naming the setting at fault (`SETTING: what is wrong`) and never contains a secret.
"""

from __future__ import annotations


class ConfigError(Exception):
    """The configuration cannot be used; `problems` holds one line per problem."""

    def __init__(self, *problems: str) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)
