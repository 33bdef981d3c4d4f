"""Loopback ports for stand-ins and for the child processes under test, without races.

* A server in this process never needs a port number in advance: it binds 127.0.0.1:0 itself
  (`testkit.background_server`) and reports the port the kernel gave it.
* A child process that binds the port itself (the proxy, Prometheus, the whole stack) is given
  `free_port()`: a port free a moment ago, never handed out twice by this process. Another process
  can still take it before the child binds, so starters wrap the start in
  `retry_on_port_conflict`, which tries again with fresh ports when the child reports the port in
  use (`PortConflict`).
* `refused_port()` holds a bound but non-listening socket: connecting to it is refused (RST), and no
  other process can start listening there while it is held, unlike a port merely closed again.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

LOOPBACK = "127.0.0.1"
PORT_ATTEMPTS = 3

_handed_out: set[int] = set()
_lock = threading.Lock()

T = TypeVar("T")


class PortConflict(RuntimeError):
    """A child process could not bind a port it was given: someone else took it first."""


def free_port() -> int:
    """A loopback TCP port that is free now and that this process has not handed out before."""
    while True:
        with socket.socket() as probe:
            probe.bind((LOOPBACK, 0))
            port = int(probe.getsockname()[1])
        with _lock:
            if port not in _handed_out:
                _handed_out.add(port)
                return port


def port_conflict_in(log: str, ports: Iterable[int]) -> bool:
    """Whether `log` says one of `ports` was already in use (uvicorn, Prometheus, aqua-metrics)."""
    wanted = {str(port) for port in ports}
    for line in log.splitlines():
        if re.search(r"(address )?already in use", line, re.IGNORECASE):
            numbers = set(re.findall(r"\d+", line))
            if numbers & wanted:
                return True
    return False


def retry_on_port_conflict(start: Callable[[], T], attempts: int = PORT_ATTEMPTS) -> T:
    """`start()`, again (up to `attempts` times) while it raises `PortConflict`.

    `start` must pick fresh ports itself on each call (`free_port()` never repeats a port).
    """
    for attempt in range(1, attempts + 1):
        try:
            return start()
        except PortConflict:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


@contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port on which connections are refused for as long as the block runs."""
    with socket.socket() as holder:
        holder.bind((LOOPBACK, 0))  # bound, never listening: connect() gets ECONNREFUSED
        yield int(holder.getsockname()[1])
