"""Locates the real Prometheus and promtool binaries the tests run against.

Tests never skip when a binary is missing: CI installs them (scripts/install-prometheus.sh), so a
missing binary is a broken environment and must fail loudly.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHED_BIN_DIR = REPO_ROOT / ".cache" / "prometheus" / "root" / "usr" / "bin"
# scripts/install-alertmanager.sh: Debian's Alertmanager (named prometheus-alertmanager) and amtool.
ALERTMANAGER_CACHED_BIN_DIR = REPO_ROOT / ".cache" / "alertmanager" / "root" / "usr" / "bin"


def find_alertmanager() -> Path:
    """The Alertmanager binary: ALERTMANAGER_BIN, the repo's cache, then PATH (either name)."""
    configured = os.environ.get("ALERTMANAGER_BIN")
    if configured:
        return find_binary("alertmanager", "ALERTMANAGER_BIN")
    for name in ("prometheus-alertmanager", "alertmanager"):
        found = cached_or_on_path(name, ALERTMANAGER_CACHED_BIN_DIR)
        if found:
            return found
    raise RuntimeError(
        "alertmanager not found: run scripts/install-alertmanager.sh (make deps) "
        "or set ALERTMANAGER_BIN"
    )


def find_binary(name: str, env_var: str) -> Path:
    """Return the path of `name`: from `env_var`, then PATH, then the repo's install cache."""
    configured = os.environ.get(env_var)
    if configured:
        path = Path(configured)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise RuntimeError(f"{env_var}={configured} is not an executable file")
    found = cached_or_on_path(name, CACHED_BIN_DIR)
    if found:
        return found
    raise RuntimeError(
        f"{name} not found: run scripts/install-prometheus.sh (make deps) or set {env_var}"
    )


def cached_or_on_path(name: str, cached_dir: Path) -> Path | None:
    """`name` from the repo's install cache `cached_dir`, else from PATH; None if in neither."""
    cached = cached_dir / name
    if cached.is_file():
        return cached
    on_path = shutil.which(name)
    return Path(on_path) if on_path else None
