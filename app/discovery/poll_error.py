"""`PollError`, apart from the poller so settings can import the listing helpers without asyncio
(the image's HEALTHCHECK loads the settings every 30 s)."""

from __future__ import annotations


class PollError(Exception):
    """A classified failure: `kind` counts it (a fixed word), `summary` and `hint` explain it.

    Neither may carry a secret: they are logged.
    """

    def __init__(self, kind: str, summary: str, hint: str = "") -> None:
        super().__init__(summary)
        self.kind = kind
        self.summary = summary
        self.hint = hint
