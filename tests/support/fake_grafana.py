"""A Grafana stand-in for stack tests on machines without Grafana: `install_fake_grafana(dir)`.

`aqua-metrics run grafana` execs `<GRAFANA_BIN> server --homepath=<home>` with the environment built
by `app.stack.components.grafana_environment`. This stand-in is that program. It answers what the
stack needs from Grafana (`/api/health` for readiness, `/metrics` behind the metrics basic auth for
Prometheus' scrape) and, for security tests, resolves its admin password the way Grafana does and
checks it on `/api/user`:

* Grafana reads `conf/defaults.ini` (`admin_password = admin`), then overrides each key with a
  non-empty `GF_<SECTION>_<KEY>` environment variable (pkg/setting/setting.go,
  `applyEnvVariableOverrides`), then expands `$__env{X}`/`${X}` and `$__file{path}` in every value
  (pkg/setting/expanders.go). The `GF_<NAME>__FILE` convention is NOT Grafana's: it is implemented
  by the official Docker image's entrypoint (packaging/docker/run.sh), which this stack does not
  use. The binary ignores such variables.
* The admin user is created with that password when the database is first created; later starts
  keep the stored one (REFERENCE.md: "applies only when the database is first created").

It prints one line when listening and nothing else (never a value from its environment). Tests
that run it say `stand_in_grafana` in their names: no test here runs the real Grafana.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import sys
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

GRAFANA_DEFAULT_ADMIN_PASSWORD = "admin"  # conf/defaults.ini
_EXPANSION = re.compile(r"\$(|__\w+){([^}]+)}")


def _expand(value: str, environ: Mapping[str, str]) -> str:
    """Grafana's expanders, in their priority order: env (-10), then file (-5)."""

    def env(match: re.Match[str]) -> str:
        if match.group(1) in ("", "__env"):
            return environ.get(match.group(2), "")
        return match.group(0)

    def file(match: re.Match[str]) -> str:
        if match.group(1) == "__file":
            return Path(match.group(2)).read_text(encoding="utf-8").strip()
        return match.group(0)

    return _EXPANSION.sub(file, _EXPANSION.sub(env, value))


def resolve_admin_password(environ: Mapping[str, str]) -> str:
    """The admin password a Grafana binary started with `environ` creates its admin user with."""
    value = GRAFANA_DEFAULT_ADMIN_PASSWORD
    override = environ.get("GF_SECURITY_ADMIN_PASSWORD", "")
    if len(override) > 0:
        value = override
    return _expand(value, environ)


def resolve_anonymous(environ: Mapping[str, str]) -> tuple[bool, str]:
    """(auth.anonymous enabled, org_role) as Grafana resolves them (defaults: false, Viewer)."""
    enabled = environ.get("GF_AUTH_ANONYMOUS_ENABLED", "") or "false"
    role = environ.get("GF_AUTH_ANONYMOUS_ORG_ROLE", "") or "Viewer"
    return _expand(enabled, environ).strip().lower() == "true", _expand(role, environ)


def _digest(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return None
    return user, password


def main() -> None:
    environ = dict(os.environ)
    data = Path(environ.get("GF_PATHS_DATA", "data"))
    data.mkdir(parents=True, exist_ok=True)
    database = data / "grafana.db"
    if not database.exists():  # first start: the admin user gets the resolved password
        database.write_text(json.dumps({"admin": _digest(resolve_admin_password(environ))}))
    admin_digest = json.loads(database.read_text())["admin"]
    metrics_user = environ.get("GF_METRICS_BASIC_AUTH_USERNAME", "")
    metrics_password = environ.get("GF_METRICS_BASIC_AUTH_PASSWORD", "")
    anonymous, anonymous_role = resolve_anonymous(environ)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            credentials = _basic(self.headers.get("Authorization"))
            if self.path == "/api/health":
                self._send(200, b'{"database":"ok"}')
            elif self.path == "/metrics":
                if credentials != (metrics_user, metrics_password) or not metrics_password:
                    self._send(401, b"Unauthorized\n", "text/plain")
                else:
                    self._send(200, b"grafana_fake_up 1\n", "text/plain; version=0.0.4")
            elif self.path == "/api/user":
                if (
                    credentials
                    and credentials[0] == "admin"
                    and _digest(credentials[1]) == admin_digest
                ):
                    self._send(200, b'{"login":"admin","isGrafanaAdmin":true}')
                elif credentials is None and anonymous:
                    body = json.dumps({"login": "", "anonymous": True, "role": anonymous_role})
                    self._send(200, body.encode())
                else:
                    self._send(401, b'{"message":"Unauthorized"}')
            else:
                self._send(404, b'{"message":"Not found"}')

    port = int(environ.get("GF_SERVER_HTTP_PORT", "3000"))
    address = environ.get("GF_SERVER_HTTP_ADDR", "") or "0.0.0.0"
    server = ThreadingHTTPServer((address, port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"fake grafana: listening on {address}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


SCRIPT = """#!{python}
import sys
sys.path.insert(0, {root!r})
from tests.support.fake_grafana import main
main()
"""


def install_fake_grafana(directory: Path) -> Path:
    """Write `<directory>/bin/grafana` (+ conf/defaults.ini) and return the binary's path."""
    from testkit.binaries import REPO_ROOT

    binary = Path(directory) / "bin" / "grafana"
    binary.parent.mkdir(parents=True, exist_ok=True)
    (Path(directory) / "conf").mkdir(exist_ok=True)
    (Path(directory) / "conf" / "defaults.ini").write_text(
        f"[security]\nadmin_password = {GRAFANA_DEFAULT_ADMIN_PASSWORD}\n"
    )
    binary.write_text(SCRIPT.format(python=sys.executable, root=str(REPO_ROOT)))
    binary.chmod(0o755)
    return binary


if __name__ == "__main__":
    main()
