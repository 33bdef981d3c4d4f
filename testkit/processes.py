"""Start a server process for a test, await it over HTTP, and stop it: the parts every real
receiver (VictoriaMetrics, vmauth, Prometheus) shares."""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import IO

from testkit.waiting import wait_until


def launch(argv: list[str], log: IO[bytes] | None = None) -> subprocess.Popen[bytes]:
    """Start `argv` in its own session (so it can be killed as a group), output to `log` or
    nowhere."""
    return subprocess.Popen(
        argv,
        stdout=log if log is not None else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
        start_new_session=True,
    )


def http_status(request: urllib.request.Request | str, timeout: float = 5) -> int:
    """The HTTP status the server answers (error statuses too); OSError when it is unreachable."""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def wait_answering(
    process: subprocess.Popen[bytes],
    answers: Callable[[], bool],
    timeout: float,
    what: str,
    details: Callable[[], str] | None = None,
) -> None:
    """Poll `answers` until true; fail at once if `process` exits first (with `details`)."""

    def up() -> bool:
        if process.poll() is not None:
            extra = f":\n{details()}" if details else ""
            raise AssertionError(f"{what} exited with {process.returncode}{extra}")
        try:
            return answers()
        except OSError:
            return False

    wait_until(up, timeout, 0.1, lambda: f"{what} not up" + (f":\n{details()}" if details else ""))


def stop_process(
    process: subprocess.Popen[bytes] | None,
    timeout: float,
    stop_signal: signal.Signals = signal.SIGTERM,
) -> None:
    """Send `stop_signal` to a running process; SIGKILL its group if it outlasts `timeout`."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(stop_signal)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
