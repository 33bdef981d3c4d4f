"""A stop request in the first second of `aqua-metrics start` is a clean stop (issue 16).

SIGTERM (as a container runtime sends it, to start alone) or SIGINT (Ctrl-C, to the whole process
group, the credentials-check child included) at moments spread over start-up: the exit code is 0,
130 or 143 (or death by that very signal), never 2 (the bad-setting code); no traceback, no
credentials complaint, and nothing left running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from testkit.binaries import find_alertmanager
from testkit.oci_credentials import make_api_key_profile
from testkit.ports import free_port, kept_port
from testkit.stack import base_environment, short_tmp_dir
from testkit.waiting import wait_until
from tests.support.netstat import listening_addresses

pytestmark = pytest.mark.stack

CLEAN = {0, 130, 143, -signal.SIGINT, -signal.SIGTERM}
DELAYS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.65, 0.8, 1.0, 1.2)
# Ctrl-C while CPython itself starts (site imports, before any aqua-metrics code) prints CPython's
# own traceback (see app/entry.py): SIGINT is sent once our code runs, even on a loaded machine.
CASES = (
    [(signal.SIGTERM, delay) for delay in DELAYS]
    + [(signal.SIGINT, delay) for delay in DELAYS if delay >= 0.2]
    + [(signal.SIGINT, delay) for delay in (0.25, 0.35, 0.45)]
)


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    return make_api_key_profile(tmp_path_factory.mktemp("oci"))


def _processes_using(data_dir) -> list[int]:
    marker = f"DATA_DIR={data_dir}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as handle:
                    if marker in handle.read().split(b"\0"):
                        found.append(int(entry))
            except OSError:
                continue
    return found


def _start(profile, data_dir, proxy_port: int, **extra: str) -> subprocess.Popen[bytes]:
    """`aqua-metrics start` in a session of its own, as a user's shell would run it."""
    env = base_environment(
        {
            "DATA_DIR": str(data_dir),
            "TARGET": f"http://127.0.0.1:{free_port()}/metrics",
            "OCI_AUTH": "api_key",
            "OCI_CONFIG_FILE": str(profile.config_path),
            "PROXY_PORT": str(proxy_port),
            "PROMETHEUS_PORT": str(kept_port()),
            **extra,
        }
    )
    return subprocess.Popen(
        [sys.executable, "-m", "app", "start"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        cwd="/",
    )


def _output_after_stop(process: subprocess.Popen[bytes], stop: Callable[[], None]) -> str:
    """Run `stop`, wait for the exit (killing the group if it hangs) and return all output."""
    try:
        stop()
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    return (out + err).decode(errors="replace")


@pytest.mark.parametrize(("signum", "delay"), CASES)
def test_a_signal_during_start_up_is_a_clean_stop(profile, signum, delay):
    data_dir = short_tmp_dir()
    proxy_port = kept_port()  # reserved: no other test can take it while start checks it
    process = _start(profile, data_dir, proxy_port)

    def stop() -> None:
        time.sleep(delay)  # the moment of the signal is the test's input, not a wait
        if signum == signal.SIGINT:
            os.killpg(process.pid, signum)  # Ctrl-C: the whole foreground group
        else:
            process.send_signal(signum)

    text = _output_after_stop(process, stop)
    assert process.returncode in CLEAN, f"exit {process.returncode}:\n{text}"
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert "credentials" not in text.lower(), text
    wait_until(lambda: _processes_using(data_dir) == [], 15, 0.1, "stack processes left running")
    assert not listening_addresses(proxy_port)


def test_ctrl_c_while_amtool_checks_the_configuration_is_a_clean_stop(profile, tmp_path):
    """The signal reaches amtool check-config itself (the moment the timed cases above hit only
    by chance): its death by SIGINT is our stop, not a refused configuration (exit 2)."""
    real = find_alertmanager()
    amtool = real.parent / "amtool"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "alertmanager").symlink_to(real)
    checking = tmp_path / "amtool-running"
    wrapper = bin_dir / "amtool"
    wrapper.write_text(f'#!/bin/sh\n: > "{checking}"\nsleep 30\nexec "{amtool}" "$@"\n')
    wrapper.chmod(0o755)
    data_dir = short_tmp_dir()
    process = _start(profile, data_dir, kept_port(), ALERTMANAGER_BIN=str(bin_dir / "alertmanager"))

    def stop() -> None:
        wait_until(checking.exists, 30, 0.02, "amtool check-config never started")
        os.killpg(process.pid, signal.SIGINT)

    text = _output_after_stop(process, stop)
    assert process.returncode in CLEAN, f"exit {process.returncode}:\n{text}"
    assert "amtool" not in text and "Traceback" not in text, text
    assert _processes_using(data_dir) == []
