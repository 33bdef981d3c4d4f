"""Where the stack keeps things under DATA_DIR.

prometheus/, grafana/ and alertmanager/ hold what the user stored and survive restarts; secrets/ holds generated
passwords (0700/0600) and survives too; runtime/ is rewritten on every start.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

# sun_path is 108 bytes on Linux; keep a margin for the terminating NUL.
MAX_SOCKET_PATH = 100


@dataclass(frozen=True)
class DataLayout:
    data_dir: Path

    @property
    def prometheus_data(self) -> Path:
        return self.data_dir / "prometheus"

    @property
    def grafana_data(self) -> Path:
        return self.data_dir / "grafana"

    @property
    def alertmanager_data(self) -> Path:
        """Silences and the notification log: kept, so a restart re-sends nothing."""
        return self.data_dir / "alertmanager"

    @property
    def alertmanager_config(self) -> Path:
        return self.runtime / "alertmanager.yml"

    @property
    def secrets(self) -> Path:
        return self.data_dir / "secrets"

    @property
    def runtime(self) -> Path:
        return self.data_dir / "runtime"

    @property
    def prometheus_config(self) -> Path:
        return self.runtime / "prometheus.yml"

    @property
    def prometheus_web_config(self) -> Path:
        return self.runtime / "prometheus-web.yml"

    @property
    def fatal_marker(self) -> Path:
        return self.runtime / "fatal"

    @property
    def grafana_admin_password(self) -> Path:
        return self.secrets / "grafana-admin-password"

    @property
    def grafana_metrics_password(self) -> Path:
        return self.secrets / "grafana-metrics-password"

    @property
    def prometheus_password(self) -> Path:
        return self.secrets / "prometheus-basic-auth-password"

    @property
    def supervisor_socket(self) -> Path:
        """Under runtime/ when short enough for a unix socket, else a short path in /tmp."""
        preferred = self.runtime / "supervisor.sock"
        if len(str(preferred).encode()) <= MAX_SOCKET_PATH:
            return preferred
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"aqua-metrics-{digest}.sock"
