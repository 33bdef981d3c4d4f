"""What a crashed stack may leave in DATA_DIR, found and cleared before a new start.

A stack's processes all carry `AQUA_RUNTIME_DIR=<DATA_DIR>/runtime` in their environment (`start`
sets it for supervisord, which passes it on). A new start on the same DATA_DIR looks for them in
/proc: when supervisord of its pid file still runs, the stack is running and start refuses; any
other such process is a leftover of a stack whose supervisord died, and is stopped (TERM, then KILL)
so it no longer holds a port. The stale pid file and socket are removed. Only processes of this
user that name this very runtime folder are ever signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from app.stack.layout import DataLayout

RUNTIME_ENV = "AQUA_RUNTIME_DIR"
STOP_WAIT_SECONDS = 5.0


def supervisord_pid_file(layout: DataLayout) -> Path:
    return layout.runtime / "supervisord.pid"  # supervisord.conf: pidfile=


def _environ_names(pid: int, marker: bytes) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def stack_processes(layout: DataLayout) -> list[int]:
    """PIDs of this user's processes that belong to a stack on `layout`'s DATA_DIR."""
    marker = f"{RUNTIME_ENV}={layout.runtime}".encode()
    uid = os.getuid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
        except OSError:
            continue
        if _environ_names(int(entry.name), marker):
            found.append(int(entry.name))
    return sorted(found)


def running_supervisord(layout: DataLayout) -> int | None:
    """The pid of a live supervisord of this DATA_DIR, from its pid file; None if there is none."""
    try:
        pid = int(supervisord_pid_file(layout).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    marker = f"{RUNTIME_ENV}={layout.runtime}".encode()
    if b"supervisord" in cmdline and _environ_names(pid, marker):
        return pid
    return None


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"  # a zombie holds no port


def stop_leftovers(layout: DataLayout) -> list[int]:
    """Stop the leftover processes of a dead stack on this DATA_DIR; remove its stale pid file and
    socket. Returns the pids stopped."""
    pids = stack_processes(layout)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    supervisord_pid_file(layout).unlink(missing_ok=True)
    layout.supervisor_socket.unlink(missing_ok=True)
    return pids
