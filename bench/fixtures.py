"""What the benchmarks run against: OCI API-key credentials, payload files, the fast upstream
and the proxy, each a real process on 127.0.0.1 that is always stopped on exit.

Each process listens on a port reserved for it (`testkit.ports.reserve_port`) for as long as it
runs, so no other process can be on that port, and each is awaited as itself: alive, and answering
the endpoint only it serves (the upstream's `/__stats`, the proxy's `/readyz`)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

from bench.common import PYTHON, ROOT, subprocess_env
from bench.payloads import Payload
from testkit.oci_credentials import ApiKeyCredentials, fake_ocid, make_api_key_profile
from testkit.ports import free_port, reserve_port

# The upstream exits by itself after this long even if the benchmark dies without cleanup.
UPSTREAM_MAX_SECONDS = 3600


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time (this process only, by its pid)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Workspace:
    """A temp dir with an API-key profile, the payload files and a fast upstream serving them."""

    def __init__(self, payloads: dict[str, Payload], *, verify_every: int = 20) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="aqbench-", dir="/tmp"))
        self.credentials: ApiKeyCredentials = make_api_key_profile(self.dir / "oci")
        self.payloads = payloads
        payload_dir = self.dir / "payloads"
        payload_dir.mkdir()
        for payload in payloads.values():
            (payload_dir / f"{payload.name}.prom").write_bytes(payload.body)
            (payload_dir / f"{payload.name}.prom.gz").write_bytes(payload.gzipped)
        self._upstream_reservation = reserve_port()
        self.upstream_port = self._upstream_reservation.port
        self.upstream_log = self.dir / "upstream.log"
        with self.upstream_log.open("wb") as log:
            self.upstream = subprocess.Popen(
                [
                    PYTHON,
                    "-m",
                    "bench.upstream",
                    f"--port={self.upstream_port}",
                    f"--payload-dir={payload_dir}",
                    f"--public-key={self.credentials.key.public_path}",
                    f"--key-id={self.credentials.key_id}",
                    f"--verify-every={verify_every}",
                    f"--max-seconds={UPSTREAM_MAX_SECONDS}",
                ],
                env=subprocess_env(),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_http(
                f"http://127.0.0.1:{self.upstream_port}/__stats",
                self.upstream,
                lambda: self.upstream_log.read_text(errors="replace"),
            )
        except BaseException:
            self.close()
            raise

    def url(self, payload: str, ocid: str | None = None) -> str:
        """A deployment URL on the upstream: `/<payload>/<md ocid>/predict/metrics`."""
        ocid = ocid or fake_ocid("datasciencemodeldeployment", "iad")
        return f"http://127.0.0.1:{self.upstream_port}/{payload}/{ocid}/predict/metrics"

    def upstream_stats(self) -> dict[str, int]:
        import json

        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.upstream_port}/__stats", timeout=5
        ) as response:
            return dict(json.load(response))

    def oci_env(self) -> dict[str, str]:
        return {"OCI_AUTH": "api_key", "OCI_CONFIG_FILE": str(self.credentials.config_path)}

    def close(self) -> None:
        stop_process(self.upstream)
        self._upstream_reservation.release()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def wait_http(
    url: str,
    process: subprocess.Popen[bytes],
    logs: Callable[[], str],
    timeout: float = 30.0,
) -> None:
    """Until `url` answers 200 while `process`, the one meant to serve it, is alive; fail at once
    (with its `logs`) if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: its server exited with {process.returncode}:\n{logs()}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready after {timeout}s:\n{logs()}")


@contextlib.contextmanager
def proxy(
    workspace: Workspace, targets: dict[str, str], extra_env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`aqua-metrics proxy` as its own process with api_key signing; yields (process, port)."""
    with (
        reserve_port() as reservation,
        _proxy_on(reservation.port, workspace, targets, extra_env) as running,
    ):
        yield running


@contextlib.contextmanager
def _proxy_on(
    port: int, workspace: Workspace, targets: dict[str, str], extra_env: dict[str, str] | None
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    env = subprocess_env(
        {
            "TARGETS": ",".join(f"{name}={url}" for name, url in targets.items()),
            "PROXY_PORT": str(port),
            "LOG_LEVEL": "warning",
            "PROMETHEUS_PORT": str(free_port()),
            "GRAFANA_PORT": str(free_port()),
            **workspace.oci_env(),
            **(extra_env or {}),
        }
    )
    log_path = workspace.dir / f"proxy-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [PYTHON, "-m", "app", "proxy"], env=env, cwd="/", stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_http(
            f"http://127.0.0.1:{port}/readyz", process, lambda: log_path.read_text(errors="replace")
        )
        yield process, port
    finally:
        stop_process(process)
