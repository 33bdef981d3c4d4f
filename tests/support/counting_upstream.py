"""`CountingUpstream`: a `SignedUpstream` that counts the requests it is holding open.

A real model server notices when a client hangs up on a slow request; `SignedUpstream`'s delay
fault sleeps on regardless. Here the delay ends as soon as the client closes its connection, so
`open_requests` is exactly the number of requests the client (the proxy) is still waiting for, and
`peak_open_requests` the most it ever kept waiting at once. Everything else (signature checks,
faults, recording) is `SignedUpstream`'s.
"""

from __future__ import annotations

import select
import socket
import threading
import time

from testkit.waiting import WaitTimeout, wait_until
from tests.support.signed_upstream import SignedUpstream, _Handler

_current = threading.local()


def peer_closed(connection: socket.socket) -> bool:
    """True when the other side closed (or reset) the connection; never blocks."""
    try:
        readable, _, _ = select.select([connection], [], [], 0)
        if not readable:
            return False
        return connection.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


class _HangupAwareStop(threading.Event):
    """Stands in for SignedUpstream's stop event: its timed wait (the delay fault) also ends when
    the client of the calling handler thread has hung up."""

    def __init__(self, owner: CountingUpstream) -> None:
        super().__init__()
        self._owner = owner

    def wait(self, timeout: float | None = None) -> bool:
        connection = getattr(_current, "connection", None)
        if connection is None or timeout is None:
            return super().wait(timeout)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self.is_set()
            if super().wait(min(0.02, remaining)):
                return True
            if peer_closed(connection):
                self._owner._hung_up()
                return True


class _CountingHandler(_Handler):
    def _serve(self) -> None:
        owner: CountingUpstream = self.owner
        owner._enter()
        _current.connection = self.connection
        try:
            super()._serve()
        finally:
            _current.connection = None
            owner._leave()


class CountingUpstream(SignedUpstream):
    """SignedUpstream plus `open_requests`, `peak_open_requests` and `hangups`."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._count_lock = threading.Lock()
        self._open = 0
        self._peak = 0
        self._hangups = 0
        self._stopping = _HangupAwareStop(self)
        self._server.RequestHandlerClass = _CountingHandler

    @property
    def open_requests(self) -> int:
        with self._count_lock:
            return self._open

    @property
    def peak_open_requests(self) -> int:
        with self._count_lock:
            return self._peak

    @property
    def hangups(self) -> int:
        """Delayed requests the client gave up on (closed the connection) before the answer."""
        with self._count_lock:
            return self._hangups

    def reset_peak(self) -> None:
        with self._count_lock:
            self._peak = self._open

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is open; True when that happened within `timeout`."""
        try:
            wait_until(lambda: self.open_requests == 0, timeout, 0.02)
        except WaitTimeout:
            return False
        return True

    def _enter(self) -> None:
        with self._count_lock:
            self._open += 1
            self._peak = max(self._peak, self._open)

    def _leave(self) -> None:
        with self._count_lock:
            self._open -= 1

    def _hung_up(self) -> None:
        with self._count_lock:
            self._hangups += 1
