"""Finds the Prometheus, Alertmanager and Grafana programs: a setting, then PATH, then the image's
locations."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from app.settings import Settings

GRAFANA_IMAGE_HOME = Path("/usr/share/grafana")


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_prometheus(settings: Settings) -> Path | None:
    if settings.prometheus.binary:
        path = Path(settings.prometheus.binary)
        return path if _executable(path) else None
    found = shutil.which("prometheus")
    return Path(found) if found else None


# The official image and upstream tarballs call it `alertmanager`; Debian `prometheus-alertmanager`.
ALERTMANAGER_NAMES = ("alertmanager", "prometheus-alertmanager")


def find_alertmanager(settings: Settings) -> Path | None:
    if settings.alerting.binary:
        path = Path(settings.alerting.binary)
        return path if _executable(path) else None
    for name in ALERTMANAGER_NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def find_amtool(alertmanager: Path) -> Path | None:
    """amtool beside the Alertmanager binary (both ship together), else on PATH."""
    beside = alertmanager.parent / "amtool"
    if _executable(beside):
        return beside
    found = shutil.which("amtool")
    return Path(found) if found else None


@dataclass(frozen=True)
class GrafanaInstall:
    binary: Path
    home: Path


def find_grafana(settings: Settings) -> GrafanaInstall | None:
    """Grafana's `grafana` binary and its homepath (the folder holding conf/ and public/)."""
    grafana = settings.grafana
    candidates: list[Path] = []
    if grafana.binary:
        candidates.append(Path(grafana.binary))
    else:
        if grafana.home:
            candidates.append(Path(grafana.home) / "bin" / "grafana")
        found = shutil.which("grafana")
        if found:
            candidates.append(Path(found))
        candidates.append(GRAFANA_IMAGE_HOME / "bin" / "grafana")
    for binary in candidates:
        if _executable(binary):
            home = Path(grafana.home) if grafana.home else binary.resolve().parent.parent
            return GrafanaInstall(binary=binary, home=home)
    return None
