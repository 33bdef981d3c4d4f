"""The shared stand-ins in testkit/: ports that cannot be taken underneath a test, and polling."""

from __future__ import annotations

import ast
import socket
import threading
import time
from pathlib import Path

import pytest

from testkit.ports import (
    PortConflict,
    free_port,
    port_conflict_in,
    refused_port,
    reserve_port,
    retry_on_port_conflict,
)
from testkit.waiting import WaitTimeout, wait_until


def test_free_port_never_hands_out_the_same_port_twice():
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    with socket.socket() as sock:  # and each was free when handed out
        sock.bind(("127.0.0.1", ports[-1]))


def test_refused_port_refuses_and_cannot_be_taken_while_held():
    with refused_port() as port:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        with socket.socket() as other, pytest.raises(OSError):
            other.bind(("127.0.0.1", port))


def test_a_reserved_port_is_taken_by_no_one_but_the_child_it_is_for():
    with reserve_port() as reservation:
        port = reservation.port
        with pytest.raises(ConnectionRefusedError):  # nothing listens until the child does
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        with socket.socket() as other, pytest.raises(OSError):  # a plain bind is refused
            other.bind(("127.0.0.1", port))
        taken = set()
        for _ in range(300):  # nor does the kernel hand it to anyone asking for any port
            with socket.socket() as anyone:
                anyone.bind(("127.0.0.1", 0))
                taken.add(anyone.getsockname()[1])
        assert port not in taken
        with socket.socket() as child:  # a server that binds as Go and uvicorn do can listen
            child.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            child.bind(("127.0.0.1", port))
            child.listen()
            socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_port_conflict_is_recognised_only_for_our_ports():
    uvicorn = "ERROR: [Errno 98] error while attempting to bind on address ('127.0.0.1', 41234): address already in use"
    prometheus = 'msg="listen tcp 127.0.0.1:41235: bind: address already in use"'
    ours = "aqua-metrics: PROXY_PORT: 127.0.0.1:41236 is already in use"
    assert port_conflict_in(uvicorn, [41234])
    assert port_conflict_in(prometheus, [1, 41235])
    assert port_conflict_in(ours, [41236])
    assert not port_conflict_in(uvicorn, [41235])
    assert not port_conflict_in("listening on 127.0.0.1:41234", [41234])


def test_retry_on_port_conflict_retries_then_gives_up():
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise PortConflict("taken")
        return "started"

    assert retry_on_port_conflict(flaky, attempts=3) == "started"

    def always_taken() -> str:
        calls.append(1)
        raise PortConflict("taken")

    calls.clear()
    with pytest.raises(PortConflict):
        retry_on_port_conflict(always_taken, attempts=2)
    assert len(calls) == 2


def test_wait_until_returns_the_first_truthy_value():
    flag = threading.Event()
    threading.Timer(0.2, flag.set).start()
    started = time.monotonic()
    assert wait_until(lambda: flag.is_set() and "done", timeout=10, interval=0.01) == "done"
    assert time.monotonic() - started < 5


def test_wait_until_fails_at_the_deadline_with_the_message():
    started = time.monotonic()
    with pytest.raises(WaitTimeout, match="still 0"):
        wait_until(lambda: 0, timeout=0.3, interval=0.05, message=lambda: "still 0")
    assert 0.3 <= time.monotonic() - started < 5


def test_bench_and_testkit_never_import_the_test_package():
    """bench/ and testkit/ stand on their own: the test package is not a library."""
    root = Path(__file__).resolve().parents[1]
    offenders = []
    for path in sorted([*root.glob("bench/*.py"), *root.glob("testkit/*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [
                f"{path.relative_to(root)}:{node.lineno} imports {name}"
                for name in names
                if name == "tests" or name.startswith("tests.")
            ]
    assert not offenders, offenders
