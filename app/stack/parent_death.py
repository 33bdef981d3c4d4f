"""Programs of the stack die with the process that started them, whatever kills it.

Linux delivers a chosen signal to a process when its parent exits (prctl PR_SET_PDEATHSIG); the
setting survives exec, so Prometheus and Grafana inherit it from `aqua-metrics run`. supervisord
gets it from `start` (so `kill -9` of start stops the stack), and every program gets it from
supervisord (so `kill -9` of supervisord, or supervisord dying on a broken stdout pipe without
stopping its children, cannot leave them holding their ports).
"""

from __future__ import annotations

import ctypes
import os
import signal

_PR_SET_PDEATHSIG = 1
UNDER_SUPERVISORD_ENV = "SUPERVISOR_ENABLED"  # set by supervisord in its programs' environment


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """Ask for `signum` when the parent exits; exit now if it already has (a race with its death).

    Safe in a preexec_fn (no Python allocation beyond the ctypes call)."""
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signum)
    if os.getppid() != parent:
        os.kill(os.getpid(), signum)


def die_with_supervisord() -> None:
    """For a program of the stack: die with supervisord. Does nothing when run by hand."""
    if os.environ.get(UNDER_SUPERVISORD_ENV) == "1":
        die_with_parent()
