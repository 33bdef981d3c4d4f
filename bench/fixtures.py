"""What the benchmarks run against: OCI API-key credentials, payload files, the fast upstream
and the proxy, each a real process on 127.0.0.1 that is always stopped on exit."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

from bench.common import PYTHON, ROOT, subprocess_env, wait_for_port
from bench.payloads import Payload
from testkit.oci_credentials import ApiKeyCredentials, fake_ocid, make_api_key_profile
from testkit.ports import free_port

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
        self.upstream_port = free_port()
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
        )
        wait_for_port(self.upstream_port)

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


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready after {timeout}s")


@contextlib.contextmanager
def proxy(
    workspace: Workspace, targets: dict[str, str], extra_env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`aqua-metrics proxy` as its own process with api_key signing; yields (process, port)."""
    port = free_port()
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
    log = (workspace.dir / f"proxy-{port}.log").open("wb")
    process = subprocess.Popen(
        [PYTHON, "-m", "app", "proxy"], env=env, cwd="/", stdout=log, stderr=subprocess.STDOUT
    )
    log.close()
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz")
        yield process, port
    finally:
        stop_process(process)
