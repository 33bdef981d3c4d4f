"""Whatever dies, nothing of the stack keeps running or holding a port (issue 16).

`kill -9` of supervisord, `kill -9` of `aqua-metrics start`, and a leftover process of a stack
whose supervisord died: the ports are free afterwards and a new start on the same DATA_DIR
succeeds. Checked in the process table (/proc) and the kernel's socket table.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app.stack.layout import DataLayout
from testkit.stack import Stack, base_environment, short_tmp_dir
from testkit.waiting import wait_until
from tests.support.netstat import listening_addresses

pytestmark = pytest.mark.stack

FAST = {"SCRAPE_INTERVAL": "2s", "SCRAPE_TIMEOUT": "1s"}


def _supervisord_pid(stack: Stack) -> int:
    return int((stack.data_dir.resolve() / "runtime" / "supervisord.pid").read_text().strip())


def _ports_free(stack: Stack) -> bool:
    return not any(
        listening_addresses(stack.ports[name]) for name in ("PROXY_PORT", "PROMETHEUS_PORT")
    )


def _nothing_left(stack: Stack) -> bool:
    return stack.processes_using_data_dir() == [] and _ports_free(stack)


def _start_again(stack: Stack) -> Stack:
    again = Stack(
        env=stack.env, data_dir=stack.data_dir, log_path=stack.log_path, ports=stack.ports
    )
    return again.start()


@pytest.mark.parametrize("victim", ["supervisord", "start"])
def test_kill_9_leaves_no_program_running_and_a_new_start_works(victim):
    stack = Stack.create(**FAST).start()
    again = None
    try:
        assert stack.process is not None
        pid = _supervisord_pid(stack) if victim == "supervisord" else stack.process.pid
        os.kill(pid, signal.SIGKILL)
        wait_until(
            lambda: _nothing_left(stack),
            30,
            0.2,
            lambda: f"left running: {stack.processes_using_data_dir()}\n{stack.logs()[-3000:]}",
        )
        stack.process.wait(timeout=30)
        again = _start_again(stack)
        again.wait_for('up{job="vllm"} == 1')
        cleaned = [line for line in again.logs().splitlines() if "did not shut down" in line]
        if victim == "supervisord":  # killed -9, it left pid file and socket: start says so
            assert cleaned == [
                "aqua-metrics: removed the stale pid file and supervisord socket of a stack on "
                f"{stack.data_dir.resolve()} that did not shut down"
            ], again.logs()
        else:  # supervisord got SIGTERM from start's death and shut down cleanly
            assert cleaned == [], again.logs()
    finally:
        if again is not None:
            assert again.stop() == 0
        stack.cleanup()
    assert stack.processes_using_data_dir() == []


def test_a_new_start_stops_what_a_dead_stack_left_and_says_so():
    """A leftover of a stack whose supervisord died (simulated: a process carrying the stack's
    runtime marker and holding the proxy port, and a pid file naming a dead supervisord)."""
    stack = Stack.create(**FAST)
    runtime = stack.data_dir.resolve() / "runtime"
    runtime.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (runtime / "supervisord.pid").write_text(f"{dead.pid}\n")
    port = stack.ports["PROXY_PORT"]
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import socket, time\n"
            f"s = socket.create_server(('127.0.0.1', {port}))\n"
            "print('listening', flush=True)\n"
            "time.sleep(600)\n",
        ],
        env={**stack.env, "AQUA_RUNTIME_DIR": str(runtime)},
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"listening\n"
        stack.start()
        assert holder.wait(timeout=10) == -signal.SIGTERM
        lines = [line for line in stack.logs().splitlines() if "did not shut down" in line]
        assert lines == [
            f"aqua-metrics: stopped 1 process(es) left running by a stack on "
            f"{stack.data_dir.resolve()} that did not shut down (pids {holder.pid})"
        ], stack.logs()
        stack.wait_for('up{job="vllm"} == 1')
        assert stack.stop() == 0
    finally:
        if holder.poll() is None:
            holder.kill()
        stack.cleanup()


def test_a_stale_socket_alone_is_removed_and_said():
    """A dead stack's supervisord socket with no pid file (a real unix socket, bound and closed):
    the new start removes it and says so in one line. PROXY_PORT is held, so start stops right
    after the clean-up with its one-line port error, and no stack runs."""
    data_dir = short_tmp_dir()
    layout = DataLayout(data_dir.resolve())
    try:
        layout.runtime.mkdir(parents=True)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
            dead.bind(str(layout.supervisor_socket))
        assert layout.supervisor_socket.exists()
        with socket.create_server(("127.0.0.1", 0)) as holder:
            port = holder.getsockname()[1]
            result = subprocess.run(
                [sys.executable, "-m", "app", "start"],
                env=base_environment({"DATA_DIR": str(data_dir), "PROXY_PORT": str(port)}),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        assert result.stdout.splitlines() == [
            f"aqua-metrics: removed the stale supervisord socket of a stack on "
            f"{layout.data_dir} that did not shut down"
        ], result.stdout + result.stderr
        assert result.stderr.splitlines() == [
            f"aqua-metrics: PROXY_PORT: 127.0.0.1:{port} is already in use"
        ]
        assert result.returncode == 2
        assert not layout.supervisor_socket.exists()
    finally:
        layout.supervisor_socket.unlink(missing_ok=True)
        shutil.rmtree(data_dir, ignore_errors=True)


def test_a_second_start_on_a_running_stack_refuses_and_touches_nothing():
    stack = Stack.create(**FAST).start()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "app", "start"],
            env={**stack.env, "PROXY_PORT": "1", "PROMETHEUS_PORT": "2"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2
        assert result.stderr.startswith("aqua-metrics: DATA_DIR: a stack is already running on")
        assert Path(f"/proc/{_supervisord_pid(stack)}").exists()
        stack.wait_for('up{job="vllm"} == 1')
    finally:
        assert stack.stop() == 0
        stack.cleanup()
