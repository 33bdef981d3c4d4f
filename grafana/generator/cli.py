"""Writes the generated files, or (`--check`) reports the ones that differ from the generator."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from grafana.generator import central_rules, fleet, monitoring_health, rules, vllm_deployment
from grafana.generator.panels import Json

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = REPO_ROOT / "grafana" / "provisioning" / "dashboards" / "aqua"
RULES_FILE = REPO_ROOT / "rules" / "aqua-metrics.rules.yml"
# For the central store's ruler; in a folder of its own, which the local Prometheus does not load.
CENTRAL_RULES_FILE = REPO_ROOT / "rules" / "central" / "aqua-central.rules.yml"

DASHBOARDS: dict[str, Callable[[], Json]] = {
    "aqua-fleet.json": fleet.build,
    "vllm-deployment.json": vllm_deployment.build,
    "monitoring-health.json": monitoring_health.build,
}


def render_dashboards() -> dict[Path, str]:
    """The JSON text of every dashboard, by the file Grafana reads it from."""
    return {
        DASHBOARD_DIR / name: json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
        for name, build in DASHBOARDS.items()
    }


def render() -> dict[Path, str]:
    """Every generated file's text, by its path: the dashboards and the alert rules."""
    return {
        **render_dashboards(),
        RULES_FILE: rules.render(),
        CENTRAL_RULES_FILE: central_rules.render(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the Grafana dashboards and alert rules.")
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated file is stale")
    args = parser.parse_args(argv)
    stale = []
    for path, text in render().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'}: {path.relative_to(REPO_ROOT)}")
    return 1 if args.check and stale else 0
