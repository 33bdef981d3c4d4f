"""Loopback ports for stand-ins and for the child processes under test, without races.

* A server in this process never needs a port number in advance: it binds 127.0.0.1:0 itself
  (`testkit.background_server`) and reports the port the kernel gave it.
* A child process that binds the port itself (the proxy, Prometheus, the whole stack) is given
  `free_port()`: a port free a moment ago, never handed out twice by this process. Another process
  can still take it before the child binds, so starters wrap the start in
  `retry_on_port_conflict`, which tries again with fresh ports when the child reports the port in
  use (`PortConflict`).
* `reserve_port()` cannot race at all: it binds first and hands the port over. It holds a bound,
  never-listening socket with SO_REUSEADDR, so the kernel gives that port to no one else (neither
  another `bind(0)` nor an outgoing connection), yet a child that binds with SO_REUSEADDR (every Go
  server: Prometheus, Alertmanager, VictoriaMetrics, vmauth; uvicorn; asyncio servers) can still
  listen on it. Keep the reservation for as long as the child may (re)start on that port.
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


class PortReservation:
    """A loopback port held for a child process to listen on (see the module docstring).

    Connections to it are refused until the child listens. `release()` (or leaving the `with`
    block) gives the port back; the child, if listening, keeps it.
    """

    def __init__(self) -> None:
        self._holder = socket.socket()
        self._holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._holder.bind((LOOPBACK, 0))  # never listen(): the child's socket is the listener
        self.port = int(self._holder.getsockname()[1])

    def release(self) -> None:
        self._holder.close()

    def __enter__(self) -> PortReservation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def reserve_port() -> PortReservation:
    """A loopback port nobody else can take while reserved; the child it is for still can."""
    return PortReservation()


_kept: list[PortReservation] = []


def kept_port() -> int:
    """A reserved port kept until this process exits: for a child whose start has no natural end
    of the reservation (a fixture's ports given as settings). One socket per call."""
    reservation = reserve_port()
    with _lock:
        _kept.append(reservation)
    return reservation.port


@contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port on which connections are refused for as long as the block runs."""
    with socket.socket() as holder:
        holder.bind((LOOPBACK, 0))  # bound, never listening: connect() gets ECONNREFUSED
        yield int(holder.getsockname()[1])
