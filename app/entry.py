"""The `aqua-metrics` entry point: a stop request while Python is still importing exits quietly.

SIGINT would otherwise raise KeyboardInterrupt from whatever module is being imported and print a
traceback. Until `app.cli` is loaded, SIGINT and SIGTERM end the process with 130 or 143 (128 + the
signal, as a shell reports it); then the usual handlers return (`start` and `proxy` install their
own), and a KeyboardInterrupt anywhere in the command is exit 130.

Not covered: Ctrl-C while the interpreter itself starts (its `site` imports, before this module
runs); CPython then prints its own traceback and dies by SIGINT. SIGTERM, what container runtimes
send, kills it silently in that phase.
"""

from __future__ import annotations

import os
import signal
from types import FrameType

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _exit_quietly(signum: int, _frame: FrameType | None) -> None:
    # os._exit, not SystemExit: an exception raised from a handler surfaces wherever the import
    # happens to be, and some places wrap it (a dataclass field's __set_name__ turns it into a
    # RuntimeError with a traceback). Nothing has started yet, so there is nothing to clean up.
    os._exit(128 + signum)


def main() -> int:
    previous = {signum: signal.signal(signum, _exit_quietly) for signum in _SIGNALS}
    from app.cli import main as cli_main

    for signum, handler in previous.items():
        signal.signal(signum, handler)
    try:
        return cli_main()
    except KeyboardInterrupt:
        return 130
