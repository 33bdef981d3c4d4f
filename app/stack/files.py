"""Finds the top-level configuration files, installed or in a checkout.

A wheel carries them under app/stack_files/ (see pyproject.toml); a checkout or an editable
install finds them at the repository root. Both are the same files.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGED = Path(__file__).resolve().parent.parent / "stack_files"
_CHECKOUT = Path(__file__).resolve().parents[2]
_MARKER = "supervisord.conf"


def stack_files_dir() -> Path:
    """Folder holding supervisord.conf, prometheus.yml, rules/ and grafana/."""
    for candidate in (_PACKAGED, _CHECKOUT):
        if (candidate / _MARKER).is_file():
            return candidate
    raise FileNotFoundError(
        f"stack files not found in {_PACKAGED} or {_CHECKOUT}; reinstall aqua-metrics"
    )


def supervisord_conf() -> Path:
    return stack_files_dir() / "supervisord.conf"


def prometheus_template() -> Path:
    return stack_files_dir() / "prometheus.yml"


def rules_dir() -> Path:
    return stack_files_dir() / "rules"


def grafana_provisioning_dir() -> Path:
    return stack_files_dir() / "grafana" / "provisioning"


def home_dashboard() -> Path:
    return grafana_provisioning_dir() / "dashboards" / "aqua" / "aqua-fleet.json"
