"""Real remote-write receivers on loopback, for tests and benchmarks of the central-store feature.

VictoriaMetrics (single node, Debian's `victoria-metrics` package, installed by
scripts/install-victoria-metrics.sh) takes Prometheus remote_write on `/api/v1/write` and answers
the Prometheus query API. It is started with its query cache off and a 1 s latency offset (its
default hides the last 30 s from queries), so a test sees what arrived a moment ago.

A missing binary fails loudly, like Prometheus' (testkit/binaries.py): it is never a skip.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt

from testkit.background_server import BackgroundHTTPServer, QuietHandler
from testkit.binaries import REPO_ROOT, cached_or_on_path
from testkit.ports import PortReservation, reserve_port
from testkit.processes import http_status, launch, stop_process, wait_answering
from testkit.waiting import wait_until

VM_CACHED_BIN_DIR = REPO_ROOT / ".cache" / "victoria-metrics" / "root" / "usr" / "bin"


def find_victoria_metrics(name: str = "victoria-metrics") -> Path:
    """`name` (victoria-metrics, vmalert) from VICTORIA_METRICS_BIN's folder, the cache, or PATH."""
    configured = os.environ.get("VICTORIA_METRICS_BIN")
    if configured:
        path = Path(configured).parent / name
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise RuntimeError(f"VICTORIA_METRICS_BIN={configured}: no executable {path}")
    found = cached_or_on_path(name, VM_CACHED_BIN_DIR)
    if found:
        return found
    raise RuntimeError(
        f"{name} not found: run scripts/install-victoria-metrics.sh (make deps) "
        "or set VICTORIA_METRICS_BIN"
    )


class LoopbackReceiver:
    """The URLs of a remote-write receiver listening on 127.0.0.1:`port`.

    Its port is reserved (`testkit.ports.reserve_port`) for the receiver's whole life: no other
    process can take it before the receiver binds, nor while a test has it stopped for an outage.
    """

    reservation: PortReservation

    @property
    def port(self) -> int:
        return self.reservation.port

    def release_port(self) -> None:
        self.reservation.release()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def write_url(self) -> str:
        return f"{self.url}/api/v1/write"


class QueryError(RuntimeError):
    """The receiver answered a query with an error (the engine could not run it)."""


@dataclass
class VictoriaMetrics(LoopbackReceiver):
    """One VictoriaMetrics process; `stop()` and `start()` again keep its port and its data."""

    data_dir: Path
    reservation: PortReservation = field(default_factory=reserve_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.vm.log"

    def start(self, timeout: float = 30.0) -> VictoriaMetrics:
        binary = find_victoria_metrics()
        with self.log_path.open("ab") as log:
            self.process = launch(
                [
                    str(binary),
                    f"-httpListenAddr=127.0.0.1:{self.port}",
                    f"-storageDataPath={self.data_dir}",
                    "-retentionPeriod=1d",
                    "-search.latencyOffset=1s",
                    "-search.disableCache",
                    "-loggerLevel=WARN",
                    "-memory.allowedPercent=20",
                ],
                log,
            )
        wait_answering(
            self.process,
            lambda: http_status(f"{self.url}/health", timeout=1) == 200,
            timeout,
            "VictoriaMetrics",
            self.logs,
        )
        return self

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        stop_process(self.process, 30, signal.SIGINT)  # SIGINT flushes its buffers to disk

    def cleanup(self) -> None:
        self.stop()
        self.release_port()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.log_path.unlink(missing_ok=True)

    def _get(self, path: str, params: dict[str, str]) -> dict:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:
            body = json.load(error)
        if body.get("status") != "success":
            raise QueryError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        """An instant query (`/api/v1/query`); at the latest data when `at` is None."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self._get("/api/v1/query", params)["result"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step}"}
        return self._get("/api/v1/query_range", params)["result"]

    def wait_for(
        self, expr: str, timeout: float, predicate: Callable[[list[dict]], object] = bool
    ) -> list[dict]:
        """Query `expr` until `predicate(result)` holds; return that result."""
        last: list[dict] = []

        def holds() -> tuple[list[dict]] | None:
            nonlocal last
            try:
                last = self.query(expr)
            except (OSError, QueryError):
                last = []
            return (last,) if predicate(last) else None

        (result,) = wait_until(holds, timeout, 0.5, lambda: f"{expr!r} did not hold; last={last}")
        return result


def start_victoria_metrics(data_dir: Path) -> VictoriaMetrics:
    return VictoriaMetrics(data_dir=data_dir).start()


@dataclass
class BearerGate(LoopbackReceiver):
    """vmauth in front of a receiver: forwards only requests bearing `token` (401 otherwise).

    Proves that the stack really sends its REMOTE_WRITE_BEARER_TOKEN: without it no sample passes.
    """

    upstream: str
    token: str
    config_path: Path
    reservation: PortReservation = field(default_factory=reserve_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> BearerGate:
        config = {"users": [{"bearer_token": self.token, "url_prefix": self.upstream}]}
        self.config_path.write_text(json.dumps(config))  # JSON is YAML
        self.process = launch(
            [
                str(find_victoria_metrics("vmauth")),
                f"-auth.config={self.config_path}",
                f"-httpListenAddr=127.0.0.1:{self.port}",
                "-loggerLevel=WARN",
            ]
        )
        wait_answering(
            self.process,
            lambda: http_status(f"{self.url}/metrics", timeout=1) == 200,
            timeout,
            "vmauth",
        )
        return self

    def status_without_token(self) -> int:
        """HTTP status of a write without credentials (401 when the gate works)."""
        return http_status(urllib.request.Request(self.write_url, data=b"", method="POST"))

    def stop(self) -> None:
        stop_process(self.process, 10)
        self.release_port()


# What a write carries besides the tenant headers; passed on as sent (the bearer token included).
FORWARDED_HEADERS = (
    "Authorization",
    "Content-Encoding",
    "Content-Type",
    "User-Agent",
    "X-Prometheus-Remote-Write-Version",
)


class _TenantHandler(QuietHandler):
    def do_POST(self) -> None:
        gate: TenantGate = self.owner
        body = self.read_body()
        sent = {name: self.headers.get(name) for name in gate.tenant_headers}
        if sent != gate.tenant_headers:
            gate.record_refusal(sent)
            self.send_bytes(401, b"no tenant\n", {"Content-Type": "text/plain"})
            return
        forward = urllib.request.Request(f"{gate.upstream}{self.path}", data=body, method="POST")
        for name in FORWARDED_HEADERS:
            if name in self.headers:
                forward.add_header(name, self.headers[name])
        try:
            with urllib.request.urlopen(forward, timeout=30) as response:
                status, content = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, content = error.code, error.read()
        except OSError:
            status, content = 503, b"upstream unreachable\n"  # Prometheus retries a 5xx
        gate.record_forward()
        self.send_bytes(status, content, {"Content-Type": "text/plain"})


class TenantGate(BackgroundHTTPServer):
    """A front door that routes a write to `upstream` only when it carries `tenant_headers`.

    Mimir and Cortex (X-Scope-OrgID) and Thanos Receive (THANOS-TENANT) take a tenant from a
    header and answer 401 without one; so does this gate, in front of a real receiver. A stack
    whose samples arrive through it has proven that Prometheus sends REMOTE_WRITE_HEADERS.
    Other headers (the bearer token too) pass on unchanged, so a gate behind it still checks them.
    """

    def __init__(self, upstream: str, tenant_headers: dict[str, str]) -> None:
        self.upstream = upstream
        self.tenant_headers = dict(tenant_headers)
        self.forwarded = 0
        self.refused: list[dict[str, str | None]] = []  # the tenant headers each refusal had
        self._count_lock = threading.Lock()
        super().__init__(_TenantHandler)

    @property
    def url(self) -> str:
        return self.base_url

    @property
    def write_url(self) -> str:
        return f"{self.base_url}/api/v1/write"

    def record_forward(self) -> None:
        with self._count_lock:
            self.forwarded += 1

    def record_refusal(self, sent: dict[str, str | None]) -> None:
        with self._count_lock:
            self.refused.append(sent)

    def status_without_tenant(self) -> int:
        """HTTP status of a write without the tenant headers (401 when the gate works)."""
        return http_status(urllib.request.Request(self.write_url, data=b"", method="POST"))


@dataclass
class PrometheusReceiver(LoopbackReceiver):
    """Prometheus' own remote-write receiver (`--web.enable-remote-write-receiver`), behind basic
    auth from its `--web.config.file`: a write without the right login is answered 401."""

    binary: Path
    folder: Path
    user: str
    password: str
    reservation: PortReservation = field(default_factory=reserve_port)
    process: subprocess.Popen[bytes] | None = None

    def _authorization(self) -> str:
        return "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()

    def start(self, timeout: float = 30.0) -> PrometheusReceiver:
        self.folder.mkdir(parents=True, exist_ok=True)
        hashed = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(rounds=4)).decode()
        (self.folder / "web.yml").write_text(json.dumps({"basic_auth_users": {self.user: hashed}}))
        (self.folder / "prometheus.yml").write_text("scrape_configs: []\n")
        self.process = launch(
            [
                str(self.binary),
                f"--config.file={self.folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--web.config.file={self.folder / 'web.yml'}",
                "--web.enable-remote-write-receiver",
                "--log.level=warn",
            ]
        )
        wait_answering(
            self.process, lambda: self._request("/-/ready") == 200, timeout, "Prometheus receiver"
        )
        return self

    def _request(self, path: str, *, authorized: bool = True, data: bytes | None = None) -> int:
        request = urllib.request.Request(f"{self.url}{path}", data=data)
        if authorized:
            request.add_header("Authorization", self._authorization())
        return http_status(request)

    def status_without_login(self) -> int:
        return self._request("/api/v1/write", authorized=False, data=b"")

    def query(self, expr: str) -> list[dict]:
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        request = urllib.request.Request(url, headers={"Authorization": self._authorization()})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)["data"]["result"]

    def stop(self) -> None:
        stop_process(self.process, 15)
        self.release_port()
        shutil.rmtree(self.folder, ignore_errors=True)
