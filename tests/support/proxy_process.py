"""The signing proxy as a user runs it: `python -m app proxy` in its own process, on a real socket.

`ProxyProcess` starts the real command with a clean environment (nothing from the developer's shell,
HOME in a temporary folder so no real ~/.oci is read), waits for /healthz, captures everything the
process writes (stdout and stderr, one file) and reads its resident memory from /proc. Tests talk
to it over loopback TCP only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from prometheus_client.parser import text_string_to_metric_families

from testkit.binaries import REPO_ROOT
from testkit.ports import PortConflict, free_port, port_conflict_in, retry_on_port_conflict
from testkit.waiting import wait_until

STARTUP_TIMEOUT = 30.0


def sample_value(exposition: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    """Value of the sample `name{labels...}` in a Prometheus text exposition (0.0 when absent).

    `labels` must match exactly the given labels (extra labels on the sample are allowed).
    """
    wanted = dict(labels or {})
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in wanted.items()):
                return float(sample.value)
    return 0.0


def label_values(exposition: str) -> set[str]:
    """Every label value of every sample in an exposition."""
    values: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            values.update(sample.labels.values())
    return values


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc/<pid>/status (VmRSS, in kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


class ProxyProcess:
    """`python -m app proxy` with `env` (plus PROXY_HOST/PROXY_PORT); use as a context manager."""

    def __init__(self, env: Mapping[str, str], *, work_dir: Path | None = None) -> None:
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="aq-proxy-", dir="/tmp"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_path = self.work_dir / f"proxy-{self.port}.log"
        self.env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(self.work_dir),
            "PYTHONPATH": str(REPO_ROOT),
            "LANG": "C.UTF-8",
            "PROXY_HOST": "127.0.0.1",
            "PROXY_PORT": str(self.port),
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> Self:
        """Start the proxy and wait for /healthz; on a lost port, again on a fresh one."""
        return retry_on_port_conflict(self._start_once)

    def _start_once(self) -> Self:
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "app", "proxy"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd="/",
                start_new_session=True,
            )
        self.process = process

        def healthy() -> bool:
            if process.poll() is not None:
                if port_conflict_in(self.logs(), [self.port]):
                    self.port = free_port()
                    self.env["PROXY_PORT"] = str(self.port)
                    raise PortConflict(f"proxy lost its port:\n{self.logs()}")
                raise AssertionError(f"proxy exited with {process.returncode}:\n{self.logs()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_until(healthy, STARTUP_TIMEOUT, 0.1, "proxy did not answer /healthz")
        return self

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> tuple[int, bytes]:
        """One GET over a fresh connection; (status, body), HTTP errors included."""
        request = urllib.request.Request(self.url + path, headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def metrics(self) -> str:
        status, body = self.get("/metrics")
        assert status == 200, body
        return body.decode()

    def rss_bytes(self) -> int:
        return rss_bytes(self.pid)

    def stop(self, timeout: float = 10.0) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
