"""Static and PromQL checks of the provisioned Grafana dashboards (Grafana itself cannot run here).

Every expression is sent to a real Prometheus (empty database), which parses it exactly as it will
in production: a syntax or type error fails here instead of showing as a red panel.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from grafana.generator import cli
from grafana.generator.dashboard import DEPLOYMENT_OPTION_REGEX
from grafana.generator.layout import Layout
from grafana.generator.metrics import LEGACY_SERIES
from testkit.ports import refused_port
from testkit.prometheus import running_prometheus
from tests.support.dashboards import (
    ALL,
    CURRENT_VLLM_SERIES,
    DASHBOARD_DIR,
    NEW_VLLM_ONLY_TARGETS,
    OPTIONAL_FEATURE_TARGETS,
    REPO_ROOT,
    VLLM_SERIES,
    VLLM_WITHOUT_MODEL_LABEL,
    PanelQuery,
    TargetKey,
    check_targets,
    iter_panels,
    load_dashboards,
    or_branches,
    panel_queries,
    prometheus_regex_escape,
    query_result_text,
    resolve_data_link,
    substitute,
    table_rows,
    variable_options,
    variable_selector,
    variables_of,
    without_zero_fallbacks,
)

EXPECTED_DASHBOARDS = {
    "aqua-fleet": ("AQUA fleet", "aqua-fleet.json"),
    "aqua-vllm": ("vLLM deployment", "vllm-deployment.json"),
    "aqua-health": ("Monitoring health", "monitoring-health.json"),
}
PROVISIONED_DATASOURCE = REPO_ROOT / "grafana" / "provisioning" / "datasources" / "prometheus.yaml"
DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}
DATASOURCE_UID = "aqua-prometheus"
# Panels that show no numbers, so have no unit.
UNITLESS_TYPES = {"row", "text", "alertlist"}

# Selections a user can make: everything, and several specific values with regex metacharacters.
SELECTIONS = {
    "all": {"deployment": ALL, "model_name": ALL},
    "specific": {
        "deployment": ["demo", "llama-prod"],
        "model_name": ["meta-llama/Llama-3.1-8B-Instruct"],
    },
}

SELECTOR = re.compile(r"(?P<metric>[a-zA-Z_:][a-zA-Z0-9_:]*)\{(?P<matchers>[^}]*)\}")
VLLM_NAME = re.compile(r"vllm:[a-zA-Z0-9_:]+")


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict]:
    return load_dashboards()


def all_targets(dashboards: dict[str, dict]):
    for uid, dashboard in dashboards.items():
        for panel in iter_panels(dashboard):
            for tgt in panel.get("targets") or []:
                yield uid, panel, tgt


def base_name(metric: str) -> str:
    return re.sub(r"_(bucket|sum|count)$", "", metric)


# --- files -------------------------------------------------------------------------------------


def test_committed_files_are_the_generator_output():
    # The dashboards Grafana reads and the rules Prometheus loads are both generated.
    rendered = cli.render()
    committed = [
        *sorted(DASHBOARD_DIR.glob("*.json")),
        REPO_ROOT / "rules" / "aqua-metrics.rules.yml",
        REPO_ROOT / "rules" / "central" / "aqua-central.rules.yml",
    ]
    assert sorted(rendered) == sorted(committed), "run: .venv/bin/python -m grafana.generator"
    for path, text in rendered.items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.name} is stale: run .venv/bin/python -m grafana.generator"
        )


def test_generator_check_reports_a_stale_file(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "vllm-deployment.json"
    stale.write_text("{}\n", encoding="utf-8")
    monkeypatch.setattr(cli, "render", lambda: {stale: "[]\n"})
    monkeypatch.setattr(cli, "REPO_ROOT", tmp_path)
    assert cli.main(["--check"]) == 1
    assert stale.read_text(encoding="utf-8") == "{}\n", "--check never writes"
    assert "stale: vllm-deployment.json" in capsys.readouterr().out
    assert cli.main([]) == 0
    assert stale.read_text(encoding="utf-8") == "[]\n"
    assert cli.main(["--check"]) == 0


def test_layout_places_panels_and_numbers_ids():
    grid = Layout()
    tiles = [grid.add(10, 4, {}) for _ in range(3)]  # the third wraps to a new line
    grid.row("Open")
    wide = grid.add(24, 8, {})
    grid.row("Collapsed", collapsed=True)
    child = grid.add(12, 5, {})
    last = grid.row("After")
    assert [t["gridPos"] for t in tiles] == [
        {"h": 4, "w": 10, "x": 0, "y": 0},
        {"h": 4, "w": 10, "x": 10, "y": 0},
        {"h": 4, "w": 10, "x": 0, "y": 4},
    ]
    assert [p["id"] for p in grid.panels] == [1, 2, 3, 10, 11, 20, 30]
    assert grid.panels[3]["gridPos"] == {"h": 1, "w": 24, "x": 0, "y": 8}
    assert wide["gridPos"]["y"] == 9
    collapsed = grid.panels[5]
    assert collapsed["collapsed"] and collapsed["panels"] == [child]
    assert (collapsed["gridPos"]["y"], child["id"], child["gridPos"]["y"]) == (17, 21, 18)
    assert last["gridPos"]["y"] == 18, "a collapsed row's panels take no space"
    with pytest.raises(ValueError, match="does not fit"):
        grid.add(25, 1, {})


def test_expected_dashboards_with_stable_uids(dashboards):
    assert set(dashboards) == set(EXPECTED_DASHBOARDS)
    for uid, (title, filename) in EXPECTED_DASHBOARDS.items():
        assert dashboards[uid]["title"] == title
        on_disk = json.loads((DASHBOARD_DIR / filename).read_text(encoding="utf-8"))
        assert on_disk["uid"] == uid


def test_dashboard_model_suits_grafana_12(dashboards):
    for uid, dashboard in dashboards.items():
        assert 39 <= dashboard["schemaVersion"] <= 41, uid
        assert dashboard["id"] is None, "provisioned dashboards must not pin a database id"
        assert isinstance(dashboard["refresh"], str), "schema 40 requires a string refresh"
        assert "time_options" not in dashboard.get("timepicker", {}), "removed in schema 41"
        assert dashboard["description"]
        assert "aqua" in dashboard["tags"], "the dashboards link to each other by the aqua tag"


def test_panel_ids_are_unique(dashboards):
    for uid, dashboard in dashboards.items():
        ids = [panel["id"] for panel in iter_panels(dashboard)]
        assert all(isinstance(i, int) and i > 0 for i in ids), uid
        assert len(ids) == len(set(ids)), f"{uid}: duplicate panel ids"


def test_every_panel_has_title_description_and_unit(dashboards):
    for uid, dashboard in dashboards.items():
        for panel in iter_panels(dashboard):
            where = f"{uid} panel {panel['id']}"
            assert panel.get("title", "").strip(), where
            if panel["type"] == "row":
                continue
            assert len(panel.get("description", "")) >= 40, f"{where}: needs a real description"
            if panel["type"] not in UNITLESS_TYPES:
                unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
                assert unit, f"{where} ({panel['title']}): no unit"


def test_timeseries_with_thresholds_show_them(dashboards):
    # A threshold on a graph is only useful when drawn; a single base step needs no style.
    for _uid, dashboard in dashboards.items():
        for panel in iter_panels(dashboard):
            if panel["type"] != "timeseries":
                continue
            defaults = panel["fieldConfig"]["defaults"]
            if len(defaults["thresholds"]["steps"]) > 1:
                assert defaults["custom"]["thresholdsStyle"]["mode"] != "off", panel["title"]


def test_every_query_uses_the_provisioned_datasource(dashboards):
    def ok(ref):
        return ref == DATASOURCE_REF or (
            isinstance(ref, dict)
            and ref.get("type") == "prometheus"
            and ref.get("uid") == DATASOURCE_UID
        )

    for uid, dashboard in dashboards.items():
        for panel in iter_panels(dashboard):
            if panel["type"] == "row":
                continue
            if "targets" in panel:
                assert ok(panel.get("datasource")), f"{uid} {panel['title']}"
                for tgt in panel["targets"]:
                    assert ok(tgt.get("datasource")), f"{uid} {panel['title']} {tgt['refId']}"
            else:
                assert panel["type"] == "alertlist", f"{uid} {panel['title']}: no queries"
        for variable in variables_of(dashboard).values():
            if variable["type"] == "query":
                assert ok(variable["datasource"]), f"{uid} variable {variable['name']}"
            if variable["type"] == "datasource":
                assert variable["query"] == "prometheus"
                assert variable["current"]["value"] == DATASOURCE_UID


def test_alert_list_reads_the_provisioned_datasource(dashboards):
    provisioned = yaml.safe_load(PROVISIONED_DATASOURCE.read_text(encoding="utf-8"))
    names = {ds["name"] for ds in provisioned["datasources"]}
    lists = [p for d in dashboards.values() for p in iter_panels(d) if p["type"] == "alertlist"]
    assert lists, "the health dashboard shows the Prometheus-evaluated rules"
    for panel in lists:
        # The alert list filters by data source *name* (Grafana's panel stores ds.name).
        assert panel["options"]["datasource"] in names
        assert panel["options"]["stateFilter"]["firing"]


def _overlaps(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


def _assert_no_overlap(panels: list[dict], where: str) -> None:
    for i, a in enumerate(panels):
        pos = a["gridPos"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, (
            f"{where}: {a['title']}"
        )
        for b in panels[i + 1 :]:
            assert not _overlaps(pos, b["gridPos"]), (
                f"{where}: {a['title']!r} overlaps {b['title']!r}"
            )


def test_grid_positions_do_not_overlap(dashboards):
    for uid, dashboard in dashboards.items():
        top = dashboard["panels"]
        _assert_no_overlap(top, uid)
        for panel in top:
            if panel["type"] != "row":
                assert "panels" not in panel
                continue
            if not panel["collapsed"]:
                assert panel["panels"] == [], f"{uid}: an open row holds no panels of its own"
                continue
            children = panel["panels"]
            assert children, f"{uid}: collapsed row {panel['title']!r} is empty"
            _assert_no_overlap(children, f"{uid} row {panel['title']!r}")
            for child in children:
                assert child["gridPos"]["y"] > panel["gridPos"]["y"], child["title"]


def test_panels_are_laid_out_top_to_bottom(dashboards):
    # Grafana orders panels by position; keeping the JSON in the same order keeps ids readable.
    for uid, dashboard in dashboards.items():
        keys = [(p["gridPos"]["y"], p["gridPos"]["x"]) for p in dashboard["panels"]]
        assert keys == sorted(keys), uid


# --- queries -----------------------------------------------------------------------------------


def test_vllm_selectors_are_filtered_by_deployment_and_model(dashboards):
    """The precise rule for every selector in every panel query:

    - a `vllm:` series always has `job="vllm"` and `deployment=~"$deployment"`, and also
      `model_name=~"$model_name"` unless its family has no model label (e.g. lora_requests_info);
    - any other series of the vLLM job (`up`, `http_requests_total`, `scrape_*`) has
      `deployment=~"$deployment"` and no model matcher: it has no model label, so a model matcher
      would drop it as soon as one model is selected;
    - a proxy series labelled by deployment has `deployment=~"$deployment"`;
    - no `vllm:` name appears without a selector.
    """
    deployment = 'deployment=~"$deployment"'
    model = 'model_name=~"$model_name"'
    proxy_with_deployment = re.compile(
        r"aqua_proxy_(scrape_duration_seconds_bucket|upstream_responses_total"
        r"|scrape_failures_total|inflight_requests|replicas_served|replicas_expected"
        r"|scrape_fetches_sum|scrape_fetches_count|scrape_stops_total)$"
    )
    for uid, panel, tgt in all_targets(dashboards):
        if uid == "aqua-fleet":
            continue  # filtered by AQUA model and region instead: see the next test
        expr = tgt["expr"]
        where = f"{uid} {panel['title']!r} {tgt['refId']}"
        for name in VLLM_NAME.finditer(expr):
            assert expr[name.end() : name.end() + 1] == "{", f"{where}: bare {name.group(0)}"
        for sel in SELECTOR.finditer(expr):
            metric, matchers = sel.group("metric"), sel.group("matchers")
            if metric.startswith("vllm:"):
                assert 'job="vllm"' in matchers and deployment in matchers, f"{where}: {metric}"
                if base_name(metric) in VLLM_WITHOUT_MODEL_LABEL:
                    assert "model_name" not in matchers, f"{where}: {metric} has no model label"
                else:
                    assert model in matchers, f"{where}: {metric} lacks the model filter"
            elif 'job="vllm"' in matchers:
                assert deployment in matchers, f"{where}: {metric}"
                assert "model_name" not in matchers, f"{where}: {metric} has no model label"
            elif proxy_with_deployment.match(metric):
                assert deployment in matchers, f"{where}: {metric}"


def test_fleet_selectors_are_filtered_by_aqua_model_and_region(dashboards):
    # The fleet has no deployment or model variable: every series of the vLLM job and the
    # inventory is filtered by the fleet's two variables, and no selector names a variable the
    # fleet does not declare (the substitution test would fail on it too).
    fleet = {uid: d for uid, d in dashboards.items() if uid == "aqua-fleet"}
    filters = ('aqua_model=~"$aqua_model"', 'region=~"$region"')
    checked = 0
    for _uid, panel, tgt in all_targets(fleet):
        expr = tgt["expr"]
        assert "$deployment" not in expr and "$model_name" not in expr, panel["title"]
        for name in VLLM_NAME.finditer(expr):
            assert expr[name.end() : name.end() + 1] == "{", f"bare {name.group(0)}"
        for sel in SELECTOR.finditer(expr):
            metric, matchers = sel.group("metric"), sel.group("matchers")
            if 'job="vllm"' in matchers or metric == "aqua_deployment_info":
                assert all(f in matchers for f in filters), f"{panel['title']!r}: {metric}"
                checked += 1
    assert checked > 20


def test_legacy_names_are_not_current_vllm_names():
    # The generator's one list of older-vLLM names must not shadow a name vLLM still exposes.
    assert LEGACY_SERIES and not (LEGACY_SERIES & CURRENT_VLLM_SERIES)


def test_only_known_vllm_series_are_queried(dashboards):
    for uid, panel, tgt in all_targets(dashboards):
        for name in VLLM_NAME.findall(tgt["expr"]):
            assert name in VLLM_SERIES, f"{uid} {panel['title']!r}: unknown vLLM series {name}"


def test_legacy_fallbacks_decide_per_deployment(dashboards):
    # Between vLLM series, `or` must match on deployment (or on nothing, for the `or vector(0)`
    # and zero-line forms): a bare `or` between rates keeps the old name's series wherever their
    # label sets differ from the new name's, and the two get summed.
    for uid, panel, tgt in all_targets(dashboards):
        expr = tgt["expr"]
        if "vllm:" not in expr:
            continue
        for match in re.finditer(r"\bor\b ", expr):
            rest = expr[match.end() :]
            assert rest.startswith(("on (deployment) ", "on () ", "vector(0)")), (
                f"{uid} {panel['title']!r}: bare `or` in {expr}"
            )


def test_quantiles_aggregate_rates_by_le(dashboards):
    quantile = re.compile(r"histogram_quantile\(\s*[0-9.]+\s*,\s*sum by \((?P<labels>[^)]*)\) \(")
    for uid, panel, tgt in all_targets(dashboards):
        expr = tgt["expr"]
        count = expr.count("histogram_quantile(")
        found = list(quantile.finditer(expr))
        assert len(found) == count, f"{uid} {panel['title']!r}: quantile without sum by (...)"
        for match in found:
            labels = [label.strip() for label in match.group("labels").split(",")]
            assert "le" in labels, f"{uid} {panel['title']!r}: sum by ({labels}) drops le"
            assert "rate(" in expr[match.end() :] and "_bucket{" in expr, panel["title"]


def _balanced(expr: str, start: int) -> str:
    """The text of the parenthesised group opening at `start`."""
    assert expr[start] == "("
    depth = 0
    for i in range(start, len(expr)):
        depth += {"(": 1, ")": -1}.get(expr[i], 0)
        if depth == 0:
            return expr[start + 1 : i]
    raise AssertionError(f"unbalanced: {expr}")


def test_ratios_are_guarded_against_division_by_zero(dashboards):
    for uid, panel, tgt in all_targets(dashboards):
        expr = tgt["expr"]
        for match in re.finditer(r" / ", expr):
            denominator = _balanced(expr, match.end())
            assert denominator.rstrip().endswith("> 0"), (
                f"{uid} {panel['title']!r}: unguarded division in {expr}"
            )


def test_heatmaps_read_bucket_rates(dashboards):
    heatmaps = [p for d in dashboards.values() for p in iter_panels(d) if p["type"] == "heatmap"]
    assert len(heatmaps) >= 2
    for panel in heatmaps:
        assert panel["options"]["calculate"] is False, "buckets are already a histogram"
        for tgt in panel["targets"]:
            assert tgt["format"] == "heatmap"
            assert tgt["legendFormat"] == "{{le}}"
            assert re.match(r"sum by \(le\) \(rate\(vllm:\w+_bucket\{", tgt["expr"]), tgt["expr"]


def test_every_declared_variable_is_used(dashboards):
    for uid, dashboard in dashboards.items():
        text = json.dumps(dashboard["panels"]) + json.dumps(
            [v.get("query") for v in variables_of(dashboard).values()]
        )
        for name in variables_of(dashboard):
            assert re.search(rf"\$(\{{)?{name}\b", text), f"{uid}: variable {name} is unused"


def test_variables(dashboards):
    fleet = variables_of(dashboards["aqua-fleet"])
    assert list(fleet) == ["datasource", "aqua_model", "region"]
    for name in ("aqua_model", "region"):
        assert variable_selector(fleet[name]["query"]) == 'up{job="vllm"}'
        assert fleet[name]["multi"] and fleet[name]["includeAll"]
        assert fleet[name]["allValue"] == ".*", "All must match deployments without the label"
    for uid, dashboard in dashboards.items():
        if uid == "aqua-fleet":
            continue
        variables = variables_of(dashboard)
        assert list(variables)[:2] == ["datasource", "deployment"], uid
        deployment = variables["deployment"]
        # Display names as the options' text, the `deployment` label as their value.
        assert deployment["query"].startswith("query_result(max by (deployment, name) (")
        assert 'up{job="vllm"}' in variable_selector(deployment["query"])
        assert deployment["regex"] == DEPLOYMENT_OPTION_REGEX
        assert deployment["multi"] and deployment["includeAll"] and deployment["allValue"] == ".*"
    model = variables_of(dashboards["aqua-vllm"])["model_name"]
    assert model["query"] == (
        'label_values(vllm:num_requests_running{job="vllm", deployment=~"$deployment"}, model_name)'
    )
    assert model["multi"] and model["includeAll"] and model["allValue"] == ".*"


def test_allowances_name_visible_targets(dashboards):
    # An allowance for a target that does not exist (renumbered panel, removed query) hides nothing
    # today and something tomorrow: every allowance must name a visible target.
    visible = {
        TargetKey(uid, panel["id"], tgt["refId"])
        for uid, panel, tgt in all_targets(dashboards)
        if not tgt.get("hide")
    }
    allowances = [
        OPTIONAL_FEATURE_TARGETS,
        NEW_VLLM_ONLY_TARGETS,
        SYNTHETIC_ABSENT,
        UNEXERCISED_BRANCHES,
        LIVE_HEALTH_ABSENT,
    ]
    for allowance in allowances:
        assert set(allowance) <= visible, set(allowance) - visible
        assert all(reason.strip() for reason in allowance.values())


def test_zero_fallbacks_are_removed_before_checking_for_data():
    assert without_zero_fallbacks("count(x == 0) or vector(0)") == "count(x == 0)"
    assert (
        without_zero_fallbacks(
            'sum by (kind) (rate(f[1m])) or on () label_replace(0 * max(up{job="aqua-proxy"}), '
            '"kind", "none", "", "")'
        )
        == "sum by (kind) (rate(f[1m]))"
    )
    assert without_zero_fallbacks("(a or on (deployment) 0 * b) / ((b) > 0)") == "(a) / ((b) > 0)"
    legacy = "sum by (deployment) (new) or on (deployment) sum by (deployment) (old)"
    assert without_zero_fallbacks(legacy) == legacy, "a legacy fallback is not a zero fill"
    assert or_branches(legacy) == ["sum by (deployment) (new)", "sum by (deployment) (old)"]
    assert or_branches('(a or on (x) b) / c{l=~"or on (d) "}') == [
        '(a or on (x) b) / c{l=~"or on (d) "}'
    ]


def test_demo_banner_is_query_driven(dashboards):
    banner = next(p for p in iter_panels(dashboards["aqua-vllm"]) if p["id"] == 1)
    assert banner["gridPos"] == {"h": 2, "w": 24, "x": 0, "y": 0}
    assert 'demo="true"' in banner["targets"][0]["expr"]
    texts = json.dumps(banner["fieldConfig"]["defaults"]["mappings"])
    assert "DEMO DATA" in texts and "Live data" in texts


def test_remote_write_panels_are_per_collector(dashboards):
    # On a central store every collector sends remote_name="central" and the same url; only
    # aqua_monitor tells them apart, so no aggregation may drop it (one collector would hide
    # another). The lag panel and AquaRemoteWriteBehind share one expression.
    exprs = [
        target["expr"]
        for panel in iter_panels(dashboards["aqua-health"])
        for target in panel.get("targets") or []
        if "prometheus_remote_storage_" in target.get("expr", "")
    ]
    assert len(exprs) == 6
    for expr in exprs:
        assert not re.search(r"\b(?:sum|max|min|avg|count)\s*\(", expr), expr
        for clause in re.findall(r"\b(?:sum|max|min|avg|count) by \(([^)]*)\)", expr):
            assert "aqua_monitor" in [label.strip() for label in clause.split(",")], expr
    rules = yaml.safe_load((REPO_ROOT / "rules" / "aqua-metrics.rules.yml").read_text())
    (behind,) = [
        rule["expr"]
        for group in rules["groups"]
        for rule in group["rules"]
        if rule.get("alert") == "AquaRemoteWriteBehind"
    ]
    assert any(expr in behind for expr in exprs)


# --- variable substitution ----------------------------------------------------------------------


def test_substitution_matches_grafana(dashboards):
    vllm = dashboards["aqua-vllm"]
    expr = 'x{deployment=~"$deployment", model_name=~"${model_name}"}[$__rate_interval]'
    assert substitute(expr, vllm, SELECTIONS["all"]) == 'x{deployment=~".*", model_name=~".*"}[1m]'
    specific = substitute(expr, vllm, SELECTIONS["specific"], rate_interval="2m")
    assert specific == (
        'x{deployment=~"(demo|llama-prod)", model_name=~"meta-llama/Llama-3\\\\.1-8B-Instruct"}[2m]'
    )
    assert substitute("$__range $__interval", vllm, {}, interval="30s", range_="6h") == "21600s 30s"
    assert substitute("${deployment:regex}", vllm, {"deployment": ["a.b", "c"]}) == "(a\\.b|c)"
    assert substitute("${deployment:pipe}", vllm, {"deployment": ["a", "b"]}) == "a|b"
    assert prometheus_regex_escape("a\\b") == "a\\\\\\\\b"
    with pytest.raises(ValueError, match="undeclared"):
        substitute("$nope", vllm, {})


def test_panel_queries_cover_collapsed_rows_and_variables(dashboards):
    queries = panel_queries(dashboards["aqua-vllm"], SELECTIONS["all"])
    titles = {q.panel_title for q in queries}
    assert {"Draft acceptance rate", "LoRA adapters (latest)"} <= titles
    variables = {q.ref_id: q.expr for q in queries if q.kind == "variable"}
    assert variables == {
        "deployment": variable_selector(
            variables_of(dashboards["aqua-vllm"])["deployment"]["query"]
        ),
        "model_name": 'vllm:num_requests_running{job="vllm", deployment=~".*"}',
    }
    # Every variable is substituted (`$1` is label_replace's, which Grafana leaves alone).
    assert all(not re.search(r"\$(?!\d)", q.expr) for q in queries)
    assert any(q.instant for q in queries) and any(not q.instant for q in queries)
    assert {q.key for q in queries} >= {
        key for key in OPTIONAL_FEATURE_TARGETS if key.dashboard_uid == "aqua-vllm"
    }


# --- every expression parses in a real Prometheus ------------------------------------------------


def get_json(url: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as err:  # 400/422 carry the parse error as JSON
        return json.load(err)


@pytest.fixture(scope="module")
def prometheus_url(prometheus_path: Path, tmp_path_factory):
    """A real Prometheus with an empty database (parsing and type-checking only)."""
    tmp = tmp_path_factory.mktemp("prometheus")
    with running_prometheus(prometheus_path, tmp, tmp / "data") as url:
        yield url


def _all_queries(dashboards) -> list[PanelQuery]:
    return [
        query
        for dashboard in dashboards.values()
        for selection in SELECTIONS.values()
        for query in panel_queries(dashboard, selection)
    ]


def test_every_expression_parses_in_prometheus(dashboards, prometheus_url):
    failures = []
    queries = _all_queries(dashboards)
    assert len(queries) > 100
    for query in queries:
        params = urllib.parse.urlencode({"query": query.expr})
        answer = get_json(f"{prometheus_url}/api/v1/query?{params}")
        if answer.get("status") != "success":
            failures.append(f"{query.dashboard_uid} {query.panel_title!r} {query.ref_id}: {answer}")
    assert not failures, "\n".join(failures)


def test_range_expressions_evaluate_over_a_range(dashboards, prometheus_url):
    # Range panels are evaluated with query_range; a step Grafana would use for a 1h window.
    end = time.time()
    failures = []
    for query in _all_queries(dashboards):
        if query.instant or query.kind != "panel":
            continue
        params = urllib.parse.urlencode(
            {"query": query.expr, "start": end - 3600, "end": end, "step": "15s"}
        )
        answer = get_json(f"{prometheus_url}/api/v1/query_range?{params}")
        if answer.get("status") != "success":
            failures.append(f"{query.dashboard_uid} {query.panel_title!r}: {answer}")
    assert not failures, "\n".join(failures)


# --- the panels on data: current vLLM, older vLLM, and a vLLM exposing both names ----------------
#
# A synthetic database built with `promtool tsdb create-blocks-from openmetrics`: 40 minutes of
# 15-second samples from four deployments (one of them with three replicas). Counters grow
# linearly, so every rate and quantile below has an exact expected value.

STEP = 15
SAMPLES = 161  # 40 minutes
RATE_INTERVAL = "1m"  # Grafana's $__rate_interval for a 15 s scrape interval.
DEMO_MODEL = "demo/Llama-3.1-8B-Instruct"
LEGACY_MODEL = "meta-llama/Llama-2-7b-chat-hf"
TRANSITION_MODEL = "mistralai/Mistral-7B-Instruct-v0.3"
# A deployment with several instances, each replica's series labelled `replica` by the proxy.
REPLICATED_MODEL = "Qwen/Qwen2.5-7B-Instruct"
REPLICATED_REPLICAS = 3
# Cumulative share of observations at or below each bucket bound. One bucket layout for all, as
# vLLM's inter-token and time-per-output-token histograms share their bounds.
FAST = [("0.01", 0), ("0.025", 1), ("0.05", 1), ("0.075", 1), ("0.5", 1), ("0.75", 1), ("+Inf", 1)]
MEDIUM = [
    ("0.01", 0),
    ("0.025", 0),
    ("0.05", 0),
    ("0.075", 1),
    ("0.5", 1),
    ("0.75", 1),
    ("+Inf", 1),
]
SLOW = [("0.01", 0), ("0.025", 0), ("0.05", 0), ("0.075", 0), ("0.5", 0), ("0.75", 1), ("+Inf", 1)]
SECONDS = [("0.3", 0.0), ("1.0", 0.5), ("5.0", 1.0), ("+Inf", 1.0)]
TOKENS = [("10", 0.0), ("100", 0.25), ("1000", 1.0), ("+Inf", 1.0)]


class Synthetic:
    def __init__(self, end: int) -> None:
        self.end = end
        self.start = end - (SAMPLES - 1) * STEP
        self.lines: list[str] = []

    def series(self, name: str, labels: dict[str, str], value) -> None:
        text = ",".join(f'{k}="{v}"' for k, v in labels.items())
        for i in range(SAMPLES):
            seconds = i * STEP
            sample = value(seconds) if callable(value) else value
            self.lines.append(f"{name}{{{text}}} {sample} {self.start + seconds}")

    def counter(self, name: str, labels: dict[str, str], per_second: float) -> None:
        self.series(name, labels, lambda s: per_second * s)

    def histogram(self, name: str, labels: dict[str, str], buckets, per_second: float) -> None:
        for le, share in buckets:
            self.counter(f"{name}_bucket", {**labels, "le": le}, per_second * share)
        self.counter(f"{name}_count", labels, per_second)
        self.counter(f"{name}_sum", labels, per_second * 0.1)

    def deployment(
        self, name: str, model: str, *, new: bool, old: bool, replicas: int = 1, **target: str
    ) -> None:
        """One deployment's series; with `replicas` > 1, each replica's vLLM series labelled
        `replica` as the proxy serves them (one scrape target, so `up` has no replica label)."""
        # Prometheus' relabelling (prometheus.yml) gives a target without one its name as
        # `display_name`.
        base = {"job": "vllm", "instance": f"{name}.example:443", "deployment": name,
                "display_name": name, **target}  # fmt: skip
        self.series("up", base, 1)
        self.series("scrape_duration_seconds", base, 0.2)
        self.proxy(name, replicas)
        for index in range(replicas):
            labelled = {**base, "replica": f"r{index}"} if replicas > 1 else base
            # Replica KV usages spread around the deployment's value (their mean).
            spread = 0.1 * (2 * index - (replicas - 1))
            self.replica(labelled, model, new=new, old=old, kv_spread=spread, index=index)
        self.oci_monitoring(name)

    def proxy(self, name: str, replicas: int) -> None:
        """The proxy's own series about one deployment (job aqua-proxy)."""
        proxy = {"job": "aqua-proxy", "instance": "127.0.0.1:8080", "deployment": name}
        self.series("aqua_proxy_replicas_served", proxy, replicas)
        self.series("aqua_proxy_replicas_expected", proxy, replicas)
        fetches_per_scrape = sum(replicas / k for k in range(1, replicas + 1))  # n*H(n)
        self.counter("aqua_proxy_scrape_fetches_count", proxy, 1 / STEP)
        self.counter("aqua_proxy_scrape_fetches_sum", proxy, fetches_per_scrape / STEP)
        self.counter("aqua_proxy_scrape_stops_total", {**proxy, "reason": "complete"}, 1 / STEP)

    def replica(
        self,
        base: dict[str, str],
        model: str,
        *,
        new: bool,
        old: bool,
        kv_spread: float,
        index: int,
    ) -> None:
        self.series("process_start_time_seconds", base, self.start - 3600 - 1000 * index)
        http = {**base, "handler": "/v1/completions", "method": "POST"}
        self.counter("http_requests_total", {**http, "status": "2xx"}, 9)
        self.counter("http_requests_total", {**http, "status": "5xx"}, 1)
        vllm = {**base, "model_name": model, **({"engine": "0"} if new else {})}
        for reason, per_second in (("stop", 2), ("length", 1)):
            self.counter(
                "vllm:request_success_total", {**vllm, "finished_reason": reason}, per_second
            )
        self.counter("vllm:prompt_tokens_total", vllm, 500)
        self.counter("vllm:generation_tokens_total", vllm, 200)
        self.counter("vllm:num_preemptions_total", vllm, 0.1)
        self.series("vllm:num_requests_running", vllm, 4)
        self.series("vllm:num_requests_waiting", vllm, 2)
        for family in ("time_to_first_token", "e2e_request_latency", "request_queue_time"):
            self.histogram(f"vllm:{family}_seconds", vllm, SECONDS, 3)
        for family in ("request_prefill_time", "request_decode_time", "request_inference_time"):
            self.histogram(f"vllm:{family}_seconds", vllm, SECONDS, 3)
        self.histogram("vllm:request_prompt_tokens", vllm, TOKENS, 3)
        self.histogram("vllm:request_generation_tokens", vllm, TOKENS, 3)
        if new:
            self.series("vllm:kv_cache_usage_perc", vllm, (0.3 if old else 0.5) + kv_spread)
            self.counter("vllm:prefix_cache_queries_total", vllm, 100)
            self.counter("vllm:prefix_cache_hits_total", vllm, 50 if old else 30)
            self.histogram("vllm:inter_token_latency_seconds", vllm, FAST, 100)
            self.histogram("vllm:request_time_per_output_token_seconds", vllm, FAST, 3)
            for reason, count in (("capacity", 2), ("deferred", 0)):
                self.series(
                    "vllm:num_requests_waiting_by_reason", {**vllm, "reason": reason}, count
                )
        if old:
            # On a deployment that also has the new names, these are stale and must be ignored.
            self.series("vllm:gpu_cache_usage_perc", vllm, 0.99 if new else 0.42)
            self.counter("vllm:gpu_prefix_cache_queries_total", vllm, 100)
            self.counter("vllm:gpu_prefix_cache_hits_total", vllm, 90 if new else 20)
            self.histogram("vllm:time_per_output_token_seconds", vllm, SLOW if new else MEDIUM, 100)
            if not new:
                # vLLM 0.6's hit-rate gauge, the prefix panels' last fallback: the counters above
                # must win over it (see test_renamed_families_fall_back_per_deployment).
                self.series("vllm:gpu_prefix_cache_hit_rate", vllm, 0.77)

    def fleet_extras(self) -> None:
        """What the fleet dashboard reads besides the vLLM series: the inventory (two of the
        ACTIVE deployments and a FAILED one), a deployment whose scrapes fail, a firing alert."""
        proxy = {"job": "aqua-proxy", "instance": "127.0.0.1:8080"}
        for name, labels in FLEET_LABELS.items():
            self.series("aqua_deployment_info", {**proxy, "deployment": name, **labels,
                        "lifecycle_state": "ACTIVE"}, 1)  # fmt: skip
        failed = {"display_name": "Old experiment", "aqua_model": "tiiuae/falcon-7b",
                  "region": "us-ashburn-1", "inference_container": "vllm", "shape": "VM.GPU2.1"}  # fmt: skip
        self.series("aqua_deployment_info", {**proxy, "deployment": "old-experiment", **failed,
                    "lifecycle_state": "FAILED"}, 1)  # fmt: skip
        refused = {"job": "vllm", "instance": "127.0.0.1:8080", "deployment": "refused",
                   "display_name": "refused", "region": "us-ashburn-1"}  # fmt: skip
        self.series("up", refused, 0)
        self.counter(
            "aqua_proxy_scrape_failures_total",
            {**proxy, "deployment": "refused", "kind": "signature_refused"},
            1 / STEP,
        )
        alert = {"alertname": "AquaHigh5xxRatio", "alertstate": "firing", "deployment": "legacy",
                 "severity": "critical"}  # fmt: skip
        self.series("ALERTS", alert, 1)

    def oci_monitoring(self, name: str) -> None:
        """What the proxy's OCI Monitoring collector exposes for a deployment (app.monitoring)."""
        base = {
            "job": "oci-monitoring",
            "instance": "127.0.0.1:8080",
            "deployment": name,
            "deployment_ocid": f"ocid1.datasciencemodeldeployment.oc1.iad.{name}",
        }
        gauge = "oci_datascience_modeldeploy_"
        for instance in ("a", "b"):
            node = {
                **base,
                "instance_id": f"ocid1.datasciencemodeldeploymentinstance.oc1.{instance}",
            }
            for metric, value in (("gpu", 0.7), ("gpu_memory", 0.9), ("cpu", 0.3), ("memory", 0.4)):
                self.series(f"{gauge}{metric}_utilization_ratio", node, value)
            for direction in ("BytesIn", "BytesOut"):
                self.series(
                    f"{gauge}network_bytes_per_second", {**node, "network_type": direction}, 5e5
                )
        for code, family, per_second in (("200", "2XX", 3), ("429", "4XX", 0.2)):
            labels = {**base, "status_code": code, "status_family": family}
            self.series(f"{gauge}predict_response_per_second", labels, per_second)
        self.series(f"{gauge}predict_latency_seconds", base, 0.8)
        self.series(f"{gauge}predict_bandwidth_ratio", base, 0.1)

    def openmetrics(self) -> str:
        return "\n".join([*self.lines, "# EOF"]) + "\n"


# Target labels discovery gives (demo and transition); legacy is configured by URL only.
FLEET_LABELS = {
    "demo": {
        "display_name": "Demo chat",
        "aqua_model": "meta-llama/Llama-3.1-8B-Instruct",
        "region": "us-ashburn-1",
        "inference_container": "vllm",
        "shape": "VM.GPU.A10.2",
    },
    "transition": {
        "display_name": "Mistral (upgrading)",
        "aqua_model": "mistralai/Mistral-7B-Instruct-v0.3",
        "region": "eu-frankfurt-1",
        "inference_container": "vllm",
        "shape": "VM.GPU.A10.1",
    },
}


@pytest.fixture(scope="module")
def synthetic(prometheus_path: Path, promtool_path: Path, tmp_path_factory):
    """(Prometheus URL, evaluation time) over the synthetic four-deployment database."""
    tmp = tmp_path_factory.mktemp("synthetic")
    # Within retention, and before the head block of the running server.
    end = int(time.time()) // STEP * STEP - 3600
    data = Synthetic(end)
    data.deployment("demo", DEMO_MODEL, new=True, old=False, demo="true", **FLEET_LABELS["demo"])
    data.deployment("legacy", LEGACY_MODEL, new=False, old=True, region="us-ashburn-1")
    data.deployment(
        "transition", TRANSITION_MODEL, new=True, old=True, **FLEET_LABELS["transition"]
    )
    data.fleet_extras()
    data.deployment(
        "replicated", REPLICATED_MODEL, new=True, old=False, replicas=REPLICATED_REPLICAS
    )
    source = tmp / "data.om"
    source.write_text(data.openmetrics(), encoding="utf-8")
    result = subprocess.run(
        [
            str(promtool_path),
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            str(source),
            str(tmp / "tsdb"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    with running_prometheus(prometheus_path, tmp, tmp / "tsdb") as url:
        yield url, end


def instant(url: str, expr: str, at: int) -> list[dict]:
    answer = get_json(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': expr, 'time': at})}")
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def values_by_deployment(url: str, expr: str, at: int) -> dict[str, float]:
    return {r["metric"].get("deployment", ""): float(r["value"][1]) for r in instant(url, expr, at)}


# Panel ids of the vLLM dashboard used below (tiles and graphs may share a title).
KV_TILE, PREFIX_TILE, ITL_TILE, ITL_GRAPH = 9, 12, 7, 22
RATIO_TILE, REQUESTS_TILE, TOKENS_TILE, BANNER = 5, 4, 13, 1


def vllm_query(dashboards, selection: dict, panel_id: int, ref: str = "A") -> str:
    (query,) = [
        q
        for q in panel_queries(dashboards["aqua-vllm"], selection, RATE_INTERVAL)
        if q.panel_id == panel_id and q.ref_id == ref
    ]
    return query.expr


# Targets without data in the synthetic database (beyond OPTIONAL_FEATURE_TARGETS), with why.
SYNTHETIC_ABSENT: dict[TargetKey, str] = {
    TargetKey("aqua-vllm", 1, "A"): 'only the demo deployment is simulated (demo="true")',
}
# `or` alternatives no deployment of the synthetic database exposes (none: keep it that way).
UNEXERCISED_BRANCHES: dict[TargetKey, str] = {}


@pytest.mark.parametrize(
    ("deployment", "allowed"),
    [
        ("demo", {}),
        ("legacy", {**NEW_VLLM_ONLY_TARGETS, **SYNTHETIC_ABSENT}),
        ("transition", SYNTHETIC_ABSENT),
        ("replicated", SYNTHETIC_ABSENT),
    ],
)
def test_every_target_shows_data_for_each_vllm_generation(
    dashboards, synthetic, deployment, allowed
):
    url, at = synthetic
    selection = {"deployment": [deployment], "model_name": ALL}
    missing, out_of_date = check_targets(
        panel_queries(dashboards["aqua-vllm"], selection, RATE_INTERVAL),
        lambda expr, _instant: bool(instant(url, expr, at)),
        {**OPTIONAL_FEATURE_TARGETS, **allowed},
    )
    assert missing == [], f"{deployment}: no data in {missing}"
    assert out_of_date == [], f"{deployment}: allowed to be empty, but have data: {out_of_date}"


def test_every_fallback_branch_reads_a_real_series(dashboards, synthetic):
    # A legacy fallback is only worth having if its old name matches what old vLLM exposes: each
    # `or` alternative of every target, on its own, returns data for some vLLM generation.
    url, at = synthetic
    everything = {"deployment": ALL, "model_name": ALL}
    unread = []
    for query in panel_queries(dashboards["aqua-vllm"], everything, RATE_INTERVAL):
        if query.kind != "panel" or query.key in OPTIONAL_FEATURE_TARGETS:
            continue
        branches = or_branches(without_zero_fallbacks(query.expr))
        for index, branch in enumerate(branches):
            if len(branches) > 1 and not instant(url, branch, at):
                unread.append((query.key, index, branch))
    assert {key for key, _, _ in unread} == set(UNEXERCISED_BRANCHES), unread


def test_renamed_families_fall_back_per_deployment(dashboards, synthetic):
    url, at = synthetic
    everything = {"deployment": ALL, "model_name": ALL}
    kv = values_by_deployment(url, vllm_query(dashboards, everything, KV_TILE), at)
    # Legacy reads the old name; the transition deployment ignores its stale old-name value.
    assert kv == pytest.approx({"demo": 0.5, "legacy": 0.42, "transition": 0.3, "replicated": 0.5})
    hits = values_by_deployment(url, vllm_query(dashboards, everything, PREFIX_TILE), at)
    assert hits == pytest.approx({"demo": 0.3, "legacy": 0.2, "transition": 0.5, "replicated": 0.3})
    itl = values_by_deployment(url, vllm_query(dashboards, everything, ITL_TILE), at)
    # Interpolated in (10 ms, 25 ms] for the new name, (50 ms, 75 ms] for the old one.
    assert itl == pytest.approx(
        {"demo": 0.02425, "legacy": 0.07375, "transition": 0.02425, "replicated": 0.02425}
    )


def test_aggregated_quantiles_do_not_mix_in_stale_names(dashboards, synthetic):
    url, at = synthetic
    everything = {"deployment": ALL, "model_name": ALL}
    (p99,) = instant(url, vllm_query(dashboards, everything, ITL_GRAPH, "D"), at)
    # demo, transition and each of fleet's 3 replicas are fast (10-25 ms), legacy medium
    # (50-75 ms), 100 tokens/s each (600/s): the 99th percentile, rank 594, is 94% into legacy's
    # bucket (500 fast below it). Counting transition's stale 0.5-0.75 s buckets would move it
    # to 0.74 s.
    assert float(p99["value"][1]) == pytest.approx(0.05 + 0.025 * 0.94)
    (mean,) = instant(url, vllm_query(dashboards, everything, ITL_GRAPH, "E"), at)
    assert float(mean["value"][1]) == pytest.approx(0.1)  # Every family's _sum is 0.1 x _count.


def test_ratios_and_rates_on_data(dashboards, synthetic):
    url, at = synthetic
    one = {"deployment": ["legacy"], "model_name": [LEGACY_MODEL]}
    assert values_by_deployment(url, vllm_query(dashboards, one, RATIO_TILE), at) == (
        pytest.approx({"legacy": 0.1})
    )
    assert values_by_deployment(url, vllm_query(dashboards, one, REQUESTS_TILE), at) == (
        pytest.approx({"legacy": 3})
    )
    assert values_by_deployment(url, vllm_query(dashboards, one, TOKENS_TILE), at) == (
        pytest.approx({"legacy": 200})
    )
    banner = vllm_query(dashboards, {"deployment": ALL, "model_name": ALL}, BANNER)
    assert float(instant(url, banner, at)[0]["value"][1]) == 1, "the demo is among All"
    banner = vllm_query(dashboards, one, BANNER)
    assert float(instant(url, banner, at)[0]["value"][1]) == 0, "no demo selected"


def panel_ids(dashboards, kind: str) -> dict[str, int]:
    """Panel ids of the vLLM dashboard's panels of one type, by title."""
    return {p["title"]: p["id"] for p in iter_panels(dashboards["aqua-vllm"]) if p["type"] == kind}


def test_tiles_add_up_a_deployments_replicas(dashboards, synthetic):
    # Each of fleet's replicas runs at the single-replica paces of `Synthetic.replica`: rates and
    # counts sum over replicas, KV usage averages, quantiles and ratios read like one replica's.
    url, at = synthetic
    n = REPLICATED_REPLICAS
    tiles = panel_ids(dashboards, "stat")
    fleet = {"deployment": ["replicated"], "model_name": ALL}
    demo = {"deployment": ["demo"], "model_name": ALL}

    def tile(selection: dict, title: str) -> float:
        values = values_by_deployment(url, vllm_query(dashboards, selection, tiles[title]), at)
        assert len(values) == 1, (title, values)
        return next(iter(values.values()))

    sums = {
        "Requests / s": 3 * n,
        "Generation tokens / s": 200 * n,
        "Running requests": 4 * n,
        "Waiting requests": 2 * n,
        "KV cache usage": 0.5,
        "HTTP 5xx ratio": 0.1,
        "Prefix cache hit rate": 0.3,
        "Replica starts (time range)": 0,
    }
    assert {title: tile(fleet, title) for title in sums} == pytest.approx(sums)
    for title in ("TTFT p95", "Inter-token latency p95", "End-to-end p95"):
        assert tile(fleet, title) == pytest.approx(tile(demo, title)), title


def test_replicas_row_splits_a_deployment_by_replica(dashboards, synthetic):
    url, at = synthetic
    graphs = panel_ids(dashboards, "timeseries")
    fleet = {"deployment": ["replicated"], "model_name": ALL}

    def per_replica(title: str) -> dict[str, float]:
        result = instant(url, vllm_query(dashboards, fleet, graphs[title]), at)
        return {r["metric"]["replica"]: float(r["value"][1]) for r in result}

    replicas = [f"r{i}" for i in range(REPLICATED_REPLICAS)]
    assert per_replica("Requests / s per replica") == pytest.approx(dict.fromkeys(replicas, 3))
    assert per_replica("Running requests per replica") == pytest.approx(dict.fromkeys(replicas, 4))
    assert per_replica("KV cache usage per replica") == pytest.approx(
        {"r0": 0.3, "r1": 0.5, "r2": 0.7}
    )
    served = values_by_deployment(url, vllm_query(dashboards, fleet, graphs["Replicas served"]), at)
    assert served == {"replicated": REPLICATED_REPLICAS}
    fetches = vllm_query(dashboards, fleet, graphs["Upstream fetches per scrape"])
    assert values_by_deployment(url, fetches, at) == pytest.approx({"replicated": 5.5})  # 3 * H(3)
    (table_id,) = [
        p["id"] for p in iter_panels(dashboards["aqua-vllm"]) if p["title"] == "Replica start times"
    ]
    rows = instant(url, vllm_query(dashboards, fleet, table_id), at)
    assert sorted(r["metric"]["replica"] for r in rows) == replicas


def test_per_instance_panels_show_each_instance(dashboards, synthetic):
    # A panel titled "... per instance" shows a line per instance of the deployment (the
    # synthetic deployment has two instances, each publishing BytesIn and BytesOut).
    url, at = synthetic
    demo = {"deployment": ["demo"], "model_name": ALL}
    instances = {f"ocid1.datasciencemodeldeploymentinstance.oc1.{i}" for i in "ab"}
    per_instance = {
        p["title"]: p["id"]
        for p in iter_panels(dashboards["aqua-vllm"])
        if p["title"].endswith(" per instance")
    }
    assert "Network per instance" in per_instance
    for title, panel_id in per_instance.items():
        result = instant(url, vllm_query(dashboards, demo, panel_id), at)
        assert {r["metric"].get("instance_id") for r in result} == instances, title
    network = instant(url, vllm_query(dashboards, demo, per_instance["Network per instance"]), at)
    lines = {(r["metric"]["instance_id"], r["metric"]["network_type"]) for r in network}
    assert lines == {(i, t) for i in instances for t in ("BytesIn", "BytesOut")}
    assert {float(r["value"][1]) for r in network} == {5e5}, "each instance's own rate, unsummed"


def test_variables_find_values(dashboards, synthetic):
    url, at = synthetic
    for query in panel_queries(dashboards["aqua-vllm"], {"deployment": ALL}, RATE_INTERVAL):
        if query.kind == "variable":
            assert instant(url, query.expr, at), query
    models = {
        r["metric"]["model_name"]
        for r in instant(url, vllm_query_variable(dashboards, ["legacy", "transition"]), at)
    }
    assert models == {LEGACY_MODEL, TRANSITION_MODEL}


def test_deployment_variable_shows_display_names_and_keeps_deployment_values(dashboards, synthetic):
    url, at = synthetic
    vllm = dashboards["aqua-vllm"]
    (query,) = [q for q in panel_queries(vllm, {}) if q.ref_id == "deployment"]
    options = variable_options(variables_of(vllm)["deployment"], instant(url, query.expr, at))
    # In the order Grafana lists them (sort 1: by text, case-sensitive as lodash's sortBy);
    # configured by URL: the name itself.
    assert options == [
        ("Demo chat", "demo"),
        ("Mistral (upgrading)", "transition"),
        ("legacy", "legacy"),
        ("refused", "refused"),
        ("replicated", "replicated"),
    ]
    # A value selects its deployment's series in every panel, as before.
    demo = substitute('up{deployment=~"$deployment"}', vllm, {"deployment": ["demo"]})
    assert [r["metric"]["display_name"] for r in instant(url, demo, at)] == ["Demo chat"]


# The labels a per-deployment legend may name a deployment by: its display name, or (fleet
# rankings) `title`, the display name followed by the AQUA model.
READABLE_NAMES = ("display_name", "title")
LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def test_no_legend_names_a_deployment_by_its_slug(dashboards):
    for uid, panel, tgt in all_targets(dashboards):
        labels = LEGEND_LABEL.findall(tgt.get("legendFormat", ""))
        assert "deployment" not in labels, f"{uid} {panel['title']!r}: {tgt['legendFormat']}"
        # Also where the synthetic data has no series (the test below): the label is kept.
        for name in set(labels) & set(READABLE_NAMES):
            assert name in tgt["expr"], f"{uid} {panel['title']!r} drops {name}: {tgt['expr']}"


def test_every_per_deployment_line_is_named_by_its_display_name(dashboards, synthetic):
    # Every series a graph, stat or timeline shows per deployment carries the readable name its
    # legend shows: a panel aggregating `by (deployment)` alone would leave the legend blank.
    # `legacy`, `refused` and `replicated` are configured by URL: their name is their display name.
    url, at = synthetic
    by_key = {(uid, panel["id"], tgt["refId"]): tgt for uid, panel, tgt in all_targets(dashboards)}
    selection = {"deployment": ALL, "model_name": ALL, "aqua_model": ALL, "region": ALL}
    display_names = {"demo": "Demo chat", "transition": "Mistral (upgrading)"}
    checked: dict[str, int] = {}
    for uid, dashboard in dashboards.items():
        for query in panel_queries(dashboard, selection, RATE_INTERVAL):
            if query.kind != "panel":
                continue
            tgt = by_key[(uid, query.panel_id, query.ref_id)]
            if tgt["format"] != "time_series":
                continue
            lines = [
                r["metric"] for r in instant(url, query.expr, at) if "deployment" in r["metric"]
            ]
            if not lines:
                continue
            where = f"{uid} {query.panel_title!r} {query.ref_id}: {tgt['legendFormat']}"
            (name,) = [n for n in LEGEND_LABEL.findall(tgt["legendFormat"]) if n in READABLE_NAMES]
            for line in lines:
                expected = display_names.get(line["deployment"], line["deployment"])
                assert line.get(name, "").startswith(expected), (where, line)
            checked[uid] = checked.get(uid, 0) + 1
    assert set(checked) == set(dashboards), checked
    assert checked["aqua-vllm"] >= 40, checked


def test_fleet_rankings_name_display_name_and_aqua_model(dashboards, synthetic):
    url, at = synthetic
    fleet = dashboards["aqua-fleet"]
    rankings = [p for p in iter_panels(fleet) if p["title"].endswith("deployments (requests / s)")]
    (busiest,) = rankings
    (query,) = [q for q in panel_queries(fleet, {}, RATE_INTERVAL) if q.panel_id == busiest["id"]]
    titles = {r["metric"]["deployment"]: r["metric"]["title"] for r in instant(url, query.expr, at)}
    assert titles == {
        "demo": "Demo chat · meta-llama/Llama-3.1-8B-Instruct",
        "transition": "Mistral (upgrading) · mistralai/Mistral-7B-Instruct-v0.3",
        "legacy": "legacy",  # configured by URL: no AQUA model, no dangling separator
        "replicated": "replicated",
    }


def test_variable_regex_follows_grafana():
    line = query_result_text(
        {"metric": {"deployment": "d1", "name": 'Say "hi"'}, "value": [1700000000.5, "1"]}
    )
    assert line == '{deployment="d1",name="Say "hi""} 1 1700000000500'
    variable = {"query": "query_result(x)", "regex": DEPLOYMENT_OPTION_REGEX, "sort": 1}
    sample = {"metric": {"deployment": "d1", "name": 'Say "hi"'}, "value": [1, "1"]}
    assert variable_options(variable, [sample]) == [('Say "hi"', "d1")]
    # Grafana's documented examples: one capture group sets text and value; no match drops.
    up = {"query": "query_result(up)", "regex": '/.*instance="([^"]*).*/'}
    samples = [
        {"metric": {"__name__": "up", "instance": "a:9090", "job": "p"}, "value": [1, "1"]},
        {"metric": {"__name__": "up", "job": "q"}, "value": [1, "1"]},
    ]
    assert variable_options(up, samples) == [("a:9090", "a:9090")]
    # Only one named group: it sets both parts.
    only_value = {"query": "query_result(up)", "regex": '/job="(?<value>[^"]+)"/'}
    assert variable_options(only_value, samples) == [("p", "p"), ("q", "q")]


def vllm_query_variable(dashboards, deployments: list[str]) -> str:
    (query,) = [
        q
        for q in panel_queries(dashboards["aqua-vllm"], {"deployment": deployments})
        if q.kind == "variable" and q.ref_id == "model_name"
    ]
    return query.expr


# --- the monitoring-health panels on a live Prometheus --------------------------------------------

LIVE_CONFIG = """
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {rules}
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:{port}"]
  # Unreachable targets: `up` is 0 but every series derived from a scrape exists.
  - job_name: vllm
    static_configs:
      - targets: ["127.0.0.1:{closed}"]
        labels: {deployment: llama-prod, region: us-ashburn-1}
  - job_name: aqua-proxy
    static_configs:
      - targets: ["127.0.0.1:{closed}"]
"""


# On the live Prometheus below (every vLLM and proxy target unreachable), these have no data.
LIVE_HEALTH_ABSENT: dict[TargetKey, str] = {
    TargetKey("aqua-health", 1, "A"): "no deployment is up",
    TargetKey("aqua-health", 3, "A"): "no alert fires within the test's 30 s (rules have a for:)",
    TargetKey("aqua-health", 5, "A"): "the proxy is unreachable, so it reports no failure",
    TargetKey("aqua-health", 13, "B"): "the proxy is unreachable: no scrape duration histogram",
    TargetKey("aqua-health", 15, "A"): "the proxy is unreachable: no in-flight gauge",
    TargetKey("aqua-health", 21, "A"): "the proxy is unreachable: no upstream responses",
    TargetKey("aqua-health", 22, "A"): "the proxy is unreachable: no failure counters",
    TargetKey("aqua-health", 23, "A"): "the proxy is unreachable: no refresh counters",
    TargetKey("aqua-health", 23, "B"): "the proxy is unreachable: no refresh counters",
    **{
        TargetKey("aqua-health", panel, ref): "no oci-monitoring job: the collector's health"
        for panel, ref in ((61, "A"), (62, "A"), (63, "A"), (64, "A"), (64, "B"), (65, "A"))
    },
}


def test_health_panels_show_data_on_a_live_prometheus(dashboards, prometheus_path, tmp_path):
    rules = REPO_ROOT / "rules" / "aqua-metrics.rules.yml"
    with (
        refused_port() as closed,  # held: nothing can start listening there during the test
        running_prometheus(
            prometheus_path,
            tmp_path,
            tmp_path / "data",
            LIVE_CONFIG.replace("{rules}", str(rules)).replace("{closed}", str(closed)),
        ) as url,
    ):
        queries = panel_queries(dashboards["aqua-health"], {"deployment": ALL}, "4s", "1s")
        allowed = {**OPTIONAL_FEATURE_TARGETS, **LIVE_HEALTH_ABSENT}
        deadline = time.monotonic() + 30
        while True:
            at = time.time()
            missing, out_of_date = check_targets(
                queries, lambda expr, _instant: bool(instant(url, expr, at)), allowed
            )
            if not (missing or out_of_date) or time.monotonic() > deadline:
                break
            time.sleep(1)
    assert missing == [], f"no data in {missing}"
    assert out_of_date == [], f"allowed to be empty, but have data: {out_of_date}"


# --- the fleet dashboard on the synthetic fleet (current, legacy and transition vLLM) ------------

FLEET_TABLE_ID = 6  # "Deployments" (after the five total tiles)
UP_DEPLOYMENTS = ("demo", "legacy", "transition")


def fleet_panel(dashboards, panel_id: int) -> dict:
    return next(p for p in iter_panels(dashboards["aqua-fleet"]) if p["id"] == panel_id)


def fleet_results(dashboards, url: str, at: int, selection: dict | None = None) -> dict:
    """refId -> instant result of every target of the fleet table, substituted as Grafana would."""
    queries = panel_queries(dashboards["aqua-fleet"], selection or {}, RATE_INTERVAL)
    return {
        q.ref_id: instant(url, q.expr, at)
        for q in queries
        if q.kind == "panel" and q.panel_id == FLEET_TABLE_ID
    }


def test_fleet_targets_have_data_on_a_mixed_fleet(dashboards, synthetic):
    url, at = synthetic
    missing, out_of_date = check_targets(
        panel_queries(dashboards["aqua-fleet"], {}, RATE_INTERVAL),
        lambda expr, _instant: bool(instant(url, expr, at)),
        {},
    )
    assert (missing, out_of_date) == ([], [])


def test_fleet_table_has_every_column_for_every_deployment(dashboards, synthetic):
    url, at = synthetic
    panel = fleet_panel(dashboards, FLEET_TABLE_ID)
    results = fleet_results(dashboards, url, at)
    rows = table_rows(panel, results)
    # Grafana's merge keys on the fields every frame has (Time, deployment); a label some frames
    # share, such as display_name, must agree between them or the deployment splits into rows.
    shared: dict[tuple[str, str], set[str]] = {}
    for samples in results.values():
        for sample in samples:
            for label, value in sample["metric"].items():
                shared.setdefault((sample["metric"]["deployment"], label), set()).add(value)
    assert {key: values for key, values in shared.items() if len(values) > 1} == {}
    assert sorted(rows) == [
        "demo",
        "legacy",
        "old-experiment",
        "refused",
        "replicated",
        "transition",
    ]
    every_column = {f"Value #{t['refId']}" for t in panel["targets"]}
    for deployment in UP_DEPLOYMENTS:
        assert every_column <= set(rows[deployment]), (
            deployment,
            every_column - set(rows[deployment]),
        )
    # Exact values, legacy names included (KV cache from vllm:gpu_cache_usage_perc on legacy).
    by_column = {column: {d: rows[d][column] for d in UP_DEPLOYMENTS} for column in every_column}
    assert by_column["Value #B"] == {"demo": 1, "legacy": 1, "transition": 1}
    assert by_column["Value #C"] == pytest.approx({"demo": 3, "legacy": 3, "transition": 3})
    assert by_column["Value #D"] == pytest.approx(dict.fromkeys(UP_DEPLOYMENTS, 4.6))
    assert by_column["Value #F"] == pytest.approx(dict.fromkeys(UP_DEPLOYMENTS, 0.1))
    assert by_column["Value #G"] == pytest.approx({"demo": 0.5, "legacy": 0.42, "transition": 0.3})
    assert by_column["Value #H"] == pytest.approx(dict.fromkeys(UP_DEPLOYMENTS, 2))
    assert by_column["Value #I"] == pytest.approx(dict.fromkeys(UP_DEPLOYMENTS, 200))
    assert by_column["Value #J"] == {"demo": 0, "legacy": 1, "transition": 0}
    # OCI Monitoring: GPU utilization averaged over the two instances; the gateway's 4XX share
    # (0.2 of 3.2 responses per second), status families matched whatever their case.
    assert by_column["Value #K"] == pytest.approx(dict.fromkeys(UP_DEPLOYMENTS, 0.7))
    assert by_column["Value #L"] == pytest.approx(dict.fromkeys(UP_DEPLOYMENTS, 0.2 / 3.2))
    # Names and states: display name when known, else the deployment name.
    assert {d: (r["name"], r["lifecycle_state"]) for d, r in rows.items()} == {
        "demo": ("Demo chat", "ACTIVE"),
        "legacy": ("legacy", "configured"),
        "old-experiment": ("Old experiment", "FAILED"),
        "refused": ("refused", "configured"),
        "replicated": ("replicated", "configured"),
        "transition": ("Mistral (upgrading)", "ACTIVE"),
    }
    # Three replicas behind one endpoint are one row, their waiting requests summed (3 x 2).
    assert rows["replicated"]["Value #B"] == 1
    assert rows["replicated"]["Value #H"] == pytest.approx(2 * REPLICATED_REPLICAS)
    # The deployment that cannot be scraped shows DOWN and nothing else made up.
    assert rows["refused"]["Value #B"] == 0
    assert set(rows["refused"]) & every_column == {"Value #A", "Value #B", "Value #J"}


def test_fleet_filters_by_aqua_model_and_region(dashboards, synthetic):
    url, at = synthetic
    panel = fleet_panel(dashboards, FLEET_TABLE_ID)
    frankfurt = table_rows(
        panel, fleet_results(dashboards, url, at, {"region": ["eu-frankfurt-1"]})
    )
    assert sorted(frankfurt) == ["transition"]
    llama = {"aqua_model": ["meta-llama/Llama-3.1-8B-Instruct"]}
    assert sorted(table_rows(panel, fleet_results(dashboards, url, at, llama))) == ["demo"]


def test_not_scraped_panel_gives_state_and_reason(dashboards, synthetic):
    url, at = synthetic
    (query,) = [
        q for q in panel_queries(dashboards["aqua-fleet"], {}, RATE_INTERVAL)
        if q.panel_title == "Known but not scraped"
    ]  # fmt: skip
    found = {r["metric"]["deployment"]: r["metric"] for r in instant(url, query.expr, at)}
    assert sorted(found) == ["old-experiment", "refused"]
    assert found["old-experiment"]["lifecycle_state"] == "FAILED"
    assert found["refused"]["reason"] == "scrapes failing: signature_refused"


def test_each_fleet_row_links_to_its_vllm_deployment(dashboards, synthetic):
    url, at = synthetic
    panel = fleet_panel(dashboards, FLEET_TABLE_ID)
    rows = table_rows(panel, fleet_results(dashboards, url, at))
    (link,) = [
        prop["value"][0]["url"]
        for override in panel["fieldConfig"]["overrides"]
        if override["matcher"]["options"] == "Deployment"
        for prop in override["properties"]
        if prop["id"] == "links"
    ]
    vllm = dashboards["aqua-vllm"]
    (variable,) = [q for q in panel_queries(vllm, {"deployment": ALL}) if q.ref_id == "deployment"]
    offered = {
        value
        for _, value in variable_options(
            variables_of(vllm)["deployment"], instant(url, variable.expr, at)
        )
    }
    for deployment, row in rows.items():
        resolved = urllib.parse.urlsplit(resolve_data_link(link, row, "now-6h", "now"))
        assert resolved.path.split("/")[:3] == ["", "d", vllm["uid"]]
        params = urllib.parse.parse_qs(resolved.query)
        assert params == {"var-deployment": [deployment], "from": ["now-6h"], "to": ["now"]}
        if deployment != "old-experiment":  # FAILED: never scraped, so no vLLM dashboard data
            assert deployment in offered, f"{deployment} is not a value of $deployment"


def test_vllm_dashboard_links_back_to_the_fleet_and_names_its_deployments(dashboards, synthetic):
    vllm = dashboards["aqua-vllm"]
    (fleet_link,) = [link for link in vllm["links"] if link["type"] == "link"]
    assert fleet_link["url"].split("/")[:3] == ["", "d", dashboards["aqua-fleet"]["uid"]]
    assert fleet_link["keepTime"] is True
    header = next(p for p in iter_panels(vllm) if p["title"] == "Selected deployments")
    assert header["gridPos"]["y"] == 2, "right under the banner"
    url, at = synthetic
    (query,) = [
        q
        for q in panel_queries(vllm, {"deployment": ["demo", "legacy"]}, RATE_INTERVAL)
        if q.panel_id == header["id"]
    ]
    found = {r["metric"]["deployment"]: r["metric"] for r in instant(url, query.expr, at)}
    assert sorted(found) == ["demo", "legacy"]
    demo = FLEET_LABELS["demo"]
    assert {k: found["demo"].get(k) for k in demo} == demo
    assert found["legacy"]["display_name"] == "legacy", "configured by URL: only its name is known"
    assert "aqua_model" not in found["legacy"]
