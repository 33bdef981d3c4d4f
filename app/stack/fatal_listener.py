"""supervisord event listener: when a program goes FATAL, record it and stop supervisord.

supervisord has no "exit when a program gives up" and exits 0 when told to stop, so we leave a
marker that `aqua-metrics start` turns into a non-zero exit code for the container's restart
policy. Protocol: http://supervisord.org/events.html (stdout is the channel; log to stderr).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import TextIO


def parse_tokens(line: str) -> dict[str, str]:
    return dict(token.split(":", 1) for token in line.split() if ":" in token)


def handle_event(headers: dict[str, str], payload: str, marker: Path) -> bool:
    """True when the event means the stack must stop."""
    if headers.get("eventname") != "PROCESS_STATE_FATAL":
        return False
    program = parse_tokens(payload.splitlines()[0] if payload else "").get("processname", "?")
    marker.write_text(program + "\n", encoding="utf-8")
    print(
        f"aqua-metrics: program {program} entered FATAL; stopping the stack",
        file=sys.stderr,
        flush=True,
    )
    return True


def run(marker: Path, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> None:
    while True:
        stdout.write("READY\n")
        stdout.flush()
        header_line = stdin.readline()
        if not header_line:
            return
        headers = parse_tokens(header_line)
        payload = stdin.read(int(headers.get("len", "0")))
        stop = handle_event(headers, payload, marker)
        stdout.write("RESULT 2\nOK")
        stdout.flush()
        if stop:
            os.kill(os.getppid(), signal.SIGTERM)
