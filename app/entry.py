"""The `aqua-metrics` entry point: a stop request while Python is still importing exits quietly.

SIGINT would otherwise raise KeyboardInterrupt from whatever module is being imported and print a
traceback. Until `app.cli` is loaded, SIGINT and SIGTERM end the process with 130 or 143 (128 + the
signal, as a shell reports it); then the command's own handling takes over (KeyboardInterrupt
is 130 in `app.cli.main`, and `start` and `proxy` install their own handlers).
"""

from __future__ import annotations

import signal
from types import FrameType

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _exit_quietly(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main() -> int:
    previous = {signum: signal.signal(signum, _exit_quietly) for signum in _SIGNALS}
    from app.cli import main as cli_main

    for signum, handler in previous.items():
        signal.signal(signum, handler)
    return cli_main()
