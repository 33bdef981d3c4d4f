"""Runs the real stack (`aqua-metrics start`: supervisord, proxy, Prometheus) for tests and benchmarks.

Everything is real: processes, sockets, Prometheus' HTTP API. Ports are picked free and picked
again if the stack reports one of them taken (`testkit.ports`); DATA_DIR is a short path under /tmp
so supervisord's unix socket stays within the 107-byte limit.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from testkit.binaries import REPO_ROOT, find_alertmanager, find_binary
from testkit.ports import PORT_ATTEMPTS, PortConflict, free_port, port_conflict_in
from testkit.waiting import wait_until

STARTUP_TIMEOUT = 60.0
PORT_SETTINGS = ("PROXY_PORT", "PROMETHEUS_PORT", "GRAFANA_PORT", "ALERTMANAGER_PORT")

__all__ = [
    "STARTUP_TIMEOUT",
    "Stack",
    "base_environment",
    "free_port",
    "run_start",
    "short_tmp_dir",
]


def short_tmp_dir(prefix: str = "aq-") -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def base_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment: nothing from the developer's shell leaks into the stack."""
    prometheus_dir = str(find_binary("prometheus", "PROMETHEUS_BIN").parent)
    alertmanager_dir = str(find_alertmanager().parent)
    env = {
        "PATH": f"{prometheus_dir}:{alertmanager_dir}:{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        "PYTHONPATH": str(REPO_ROOT),
        "LANG": "C.UTF-8",
        "GRAFANA_ENABLED": "false",
    }
    env.update(extra or {})
    return env


@dataclass
class Stack:
    env: dict[str, str]
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    ports: dict[str, int] = field(default_factory=dict)
    # The port settings this driver picked (not given by the caller): re-picked on a port conflict.
    picked_ports: tuple[str, ...] = ()

    @classmethod
    def create(cls, data_dir: Path | None = None, **settings: str) -> Stack:
        data_dir = data_dir or short_tmp_dir()
        picked = tuple(name for name in PORT_SETTINGS if name not in settings)
        ports = {
            name: int(settings[name]) if name in settings else free_port() for name in PORT_SETTINGS
        }
        env = base_environment({"DATA_DIR": str(data_dir), **{k: str(v) for k, v in ports.items()}})
        env.update(settings)
        return cls(
            env=env,
            data_dir=data_dir,
            log_path=data_dir.parent / f"{data_dir.name}.log",
            ports=ports,
            picked_ports=picked,
        )

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['PROMETHEUS_PORT']}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['ALERTMANAGER_PORT']}"

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['PROXY_PORT']}"

    def start(self, wait: bool = True) -> Stack:
        """Start `aqua-metrics start`; with `wait`, until it logs ready.

        If it exits because one of the ports this driver picked was taken in the meantime, it is
        started again on fresh ports (up to PORT_ATTEMPTS times).
        """
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self._launch()
            if not wait:
                return self
            try:
                self.wait_ready()
                return self
            except PortConflict:
                if attempt == PORT_ATTEMPTS:
                    raise
                self._pick_fresh_ports()
        return self

    def _pick_fresh_ports(self) -> None:
        for name in self.picked_ports:
            self.ports[name] = free_port()
            self.env[name] = str(self.ports[name])

    def _launch(self) -> None:
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")  # append: several processes write to it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app", "start"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd="/",
            start_new_session=True,
        )
        log.close()

    def logs(self) -> str:
        """What this run of the stack logged (the file may hold earlier runs too)."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as handle:
            handle.seek(getattr(self, "_log_offset", 0))
            return handle.read().decode(errors="replace")

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Until the stack logs ready; PortConflict if it exited over a port this driver picked."""
        process = self.process
        if process is None:
            raise AssertionError("stack not started")

        def ready() -> bool:
            if process.poll() is not None:
                logs = self.logs()
                picked = [self.ports[name] for name in self.picked_ports]
                if port_conflict_in(logs, picked):
                    raise PortConflict(f"stack lost a port to another process:\n{logs[-2000:]}")
                raise AssertionError(f"stack exited with {process.returncode}:\n{logs}")
            return "aqua-metrics: ready" in self.logs()

        wait_until(ready, timeout, 0.2, lambda: f"stack not ready:\n{self.logs()}")

    def query(self, expr: str) -> list[dict]:
        url = f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        request = urllib.request.Request(url)
        password = self.env.get("PROMETHEUS_BASIC_AUTH_PASSWORD")
        if password:
            user = self.env.get("PROMETHEUS_BASIC_AUTH_USER", "prometheus")
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def wait_for(
        self,
        expr: str,
        timeout: float = 60.0,
        predicate: Callable[[list[dict]], object] = bool,
    ) -> list[dict]:
        """Query `expr` until `predicate(result)` holds; return that result."""
        last: list[dict] = []

        def holds() -> tuple[list[dict]] | None:
            # A 1-tuple: truthy even when the awaited result is the empty list.
            nonlocal last
            try:
                last = self.query(expr)
            except OSError:
                last = []
            return (last,) if predicate(last) else None

        (result,) = wait_until(
            holds,
            timeout,
            0.5,
            lambda: f"{expr!r} did not hold; last={last}\n{self.logs()[-4000:]}",
        )
        return result

    def supervisor_pid(self, program: str) -> int:
        output = subprocess.run(
            [sys.executable, "-m", "app", "ctl", "pid", program],
            capture_output=True,
            text=True,
            timeout=10,
            env=self.env,
            check=False,
        ).stdout.strip()
        assert output.isdigit() and int(output) > 0, f"no pid for {program}: {output!r}"
        return int(output)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, as a container runtime would; returns the exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise AssertionError(f"stack did not stop within {timeout}s:\n{self.logs()}") from None

    def processes_using_data_dir(self) -> list[int]:
        """PIDs of any process whose environment names this DATA_DIR (to find orphans)."""
        marker = f"DATA_DIR={self.data_dir}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if marker in environ.split(b"\0"):
                found.append(int(entry.name))
        return found

    def cleanup(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.log_path.unlink(missing_ok=True)


def run_start(env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`aqua-metrics start` run to completion (for inputs that must make it exit)."""
    return subprocess.run(
        [sys.executable, "-m", "app", "start"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
