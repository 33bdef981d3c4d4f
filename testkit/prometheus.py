"""A real Prometheus on a reserved loopback port, for tests that load data or scrape a stand-in."""

from __future__ import annotations

import contextlib
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from testkit.ports import reserve_port


@contextlib.contextmanager
def running_prometheus(
    prometheus_path: Path, workdir: Path, data_dir: Path, config_text: str | None = None
) -> Iterator[str]:
    """A real Prometheus on a reserved local port over `data_dir`; yields its base URL.

    `config_text` may use `{port}` for the port Prometheus listens on. The port stays reserved
    while Prometheus runs, so no other process can have taken it before Prometheus binds.
    """
    reservation = reserve_port()
    port = reservation.port
    config = workdir / "prometheus.yml"
    text = config_text or "global:\n  scrape_interval: 15s\n"
    config.write_text(text.replace("{port}", str(port)), encoding="utf-8")
    log_path = workdir / "prometheus.log"
    with reservation, log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                str(prometheus_path),
                f"--config.file={config}",
                f"--storage.tsdb.path={data_dir}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, log_path.read_text(encoding="utf-8")
                try:
                    with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                assert time.monotonic() < deadline, "Prometheus did not become ready"
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
