"""The Prometheus alert rules: valid for promtool, unit-tested, and every alert tested both ways.

rules/*.yml is what each collector's Prometheus loads; rules/central/ is for the ruler of the
central store the collectors remote-write into (README, "Beyond one container").
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.dashboards import REPO_ROOT, VLLM_SERIES

LOCAL_RULE_FILES = sorted((REPO_ROOT / "rules").glob("*.yml"))
CENTRAL_RULE_FILES = sorted((REPO_ROOT / "rules" / "central").glob("*.yml"))
RULE_FILES = LOCAL_RULE_FILES + CENTRAL_RULE_FILES
RULE_TESTS = sorted((REPO_ROOT / "tests" / "rules").glob("*.test.yml"))
EXPECTED_ALERTS = {
    "AquaDeploymentDown",
    "AquaHigh5xxRatio",
    "AquaTTFTP99High",
    "AquaE2EP95High",
    "AquaWaitingQueueBacklog",
    "AquaKVCacheNearFull",
    "AquaPreemptions",
    "AquaGenerationStalled",
    "AquaReplicaRestartLoop",
    "AquaReplicaMissing",
    "AquaProxySignatureRefused",
    "AquaGatewayErrorsOnly",
    "AquaRemoteWriteBehind",
    "AquaCollectorSilent",
}
CENTRAL_ALERTS = {"AquaCollectorSilent"}
# Alerts about a collector rather than one deployment: each is per collector (`aqua_monitor`, so
# on a central ruler one collector never hides another) and names what its text is about.
COLLECTOR_ALERTS = {
    "AquaRemoteWriteBehind": "{{ $labels.url }}",
    "AquaCollectorSilent": "{{ $labels.aqua_monitor }}",
}


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alert_rules(paths: list[Path] = RULE_FILES) -> dict[str, dict]:
    rules: dict[str, dict] = {}
    for path in paths:
        for group in load(path)["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    assert rule["alert"] not in rules, f"duplicate alert {rule['alert']}"
                    rules[rule["alert"]] = rule
    return rules


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_rule_files_exist():
    assert [p.name for p in LOCAL_RULE_FILES] == ["aqua-metrics.rules.yml"]
    assert [p.name for p in CENTRAL_RULE_FILES] == ["aqua-central.rules.yml"]
    assert [p.name for p in RULE_TESTS] == ["aqua-central.test.yml", "aqua-metrics.test.yml"]


def test_the_local_prometheus_loads_only_the_collector_rules():
    # prometheus.yml's rule_files glob (the stack renders the same glob under its own folder).
    config = load(REPO_ROOT / "prometheus.yml")
    loaded = {path for pattern in config["rule_files"] for path in REPO_ROOT.glob(pattern)}
    assert loaded == set(LOCAL_RULE_FILES)
    assert set(alert_rules(CENTRAL_RULE_FILES)) == CENTRAL_ALERTS


def test_promtool_check_rules(promtool_path):
    result = run([str(promtool_path), "check", "rules", *map(str, RULE_FILES)], REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules(promtool_path):
    # rule_files in the tests are relative to the test file, as promtool resolves them.
    result = run([str(promtool_path), "test", "rules", *map(str, RULE_TESTS)], REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_expected_alerts_are_defined():
    assert set(alert_rules()) == EXPECTED_ALERTS


def test_every_alert_is_tested_firing_and_quiet():
    firing: set[str] = set()
    quiet: set[str] = set()
    tested_files: set[Path] = set()
    for path in RULE_TESTS:
        config = load(path)
        tested_files |= {(path.parent / f).resolve() for f in config["rule_files"]}
        for test in config["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    assert tested_files == {p.resolve() for p in RULE_FILES}
    alerts = set(alert_rules())
    assert alerts - firing == set(), "alerts never shown firing in tests/rules"
    assert alerts - quiet == set(), "alerts never shown staying quiet in tests/rules"
    assert (firing | quiet) - alerts == set(), "tests name alerts that do not exist"


@pytest.mark.parametrize("name", sorted(EXPECTED_ALERTS))
def test_alert_is_actionable(name):
    rule = alert_rules()[name]
    assert re.fullmatch(r"\d+[smh]", rule["for"]), "a `for` keeps one bad sample from paging"
    assert rule["labels"]["severity"] in {"critical", "warning"}
    annotations = rule["annotations"]
    assert annotations["summary"].strip()
    subject = COLLECTOR_ALERTS.get(name, "{{ $labels.deployment }}")
    assert subject in annotations["summary"] + annotations["description"]
    assert len(annotations["description"]) > 120, "say what it means and what to do"


@pytest.mark.parametrize("name", sorted(EXPECTED_ALERTS))
def test_alert_is_per_deployment(name):
    expr = alert_rules()[name]["expr"]
    grouping = "aqua_monitor" if name in COLLECTOR_ALERTS else "deployment"
    for clause in re.findall(r"\b(?:sum|max|avg|min) by \(([^)]*)\)", expr):
        assert grouping in [label.strip() for label in clause.split(",")], expr


def test_alert_expressions_use_real_vllm_series():
    # llm-d's preemption alert used `vllm:num_preemptions` (no `_total`) and could never fire.
    for name, rule in alert_rules().items():
        for series in re.findall(r"vllm:[a-zA-Z0-9_:]+", rule["expr"]):
            assert series in VLLM_SERIES, f"{name}: unknown vLLM series {series}"


def test_legacy_fallbacks_decide_per_deployment():
    for name, rule in alert_rules().items():
        for match in re.finditer(r"\bor\b\s+", rule["expr"]):
            assert rule["expr"][match.end() :].startswith("on (deployment"), name


def test_rules_load_into_vmalert_unchanged():
    """The rule file as it is parses in vmalert (MetricsQL + its template checks), as the README
    tells VictoriaMetrics users to load it."""
    from testkit.receivers import find_victoria_metrics

    vmalert = find_victoria_metrics("vmalert")
    for path in RULE_FILES:
        result = run([str(vmalert), "-dryRun", f"-rule={path}", "-loggerLevel=ERROR"], REPO_ROOT)
        assert result.returncode == 0, result.stdout + result.stderr
