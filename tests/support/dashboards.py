"""Read the provisioned Grafana dashboards the way Grafana would, without Grafana.

Grafana cannot run in CI, so tests check what it reads: the dashboard JSON files. This module loads
them, walks their panels (including the panels kept inside collapsed rows) and turns every query
into the PromQL Grafana would send to Prometheus, variables substituted as Grafana's Prometheus
data source does it:

- a multi-value or include-All variable is regex-escaped for PromQL (`prometheusSpecialRegexEscape`
  in Grafana: special characters get two backslashes, since the value sits in a PromQL string) and
  several values become `(a|b)`; "All" becomes the variable's `allValue`;
- `${var:regex}` uses Grafana's generic regex format (one backslash), `${var:pipe}` joins with `|`,
  `${var:raw}` inserts values untouched;
- `$__rate_interval`, `$__interval`, `$__range` (and their `_ms`/`_s` forms) come from arguments.

Template variables of type `query` are returned too, their `label_values(selector, label)` reduced
to the selector and `query_result(expr)` to the expression, so a test can check that each variable
would find values; `variable_options` turns that expression's result into the (text, value)
options Grafana offers, its variable regex (named groups `text`/`value` included) applied.

`check_targets` is the data check the tests share: every visible target on its own, its zero
fallback removed, against explicit allowances keyed by (dashboard uid, panel id, refId).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana.generator.metrics import LEGACY_SERIES

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = REPO_ROOT / "grafana" / "provisioning" / "dashboards" / "aqua"

ALL = "$__all"  # The value Grafana stores for an "All" selection.

# --- vLLM metric names --------------------------------------------------------------------------
# Series names of the vLLM V1 engine as exposed on /metrics, from tests/data/vllm-metrics.tsv (a
# copy of vLLM's metric definitions: name, type, exposed_as, labels, ...), plus the names only
# older releases expose, listed once in the generator (grafana/generator/metrics.py). A typo such
# as llm-d's `vllm:num_preemptions` (no `_total`, never matches) fails the tests instead of
# leaving a panel or an alert silently empty.
VLLM_METRICS_TSV = REPO_ROOT / "tests" / "data" / "vllm-metrics.tsv"


def _vllm_catalogue() -> tuple[frozenset[str], frozenset[str]]:
    """(every exposed series name, the families without a `model_name` label)."""
    series: set[str] = set()
    without_model: set[str] = set()
    with VLLM_METRICS_TSV.open(encoding="utf-8") as rows:
        for row in csv.DictReader(rows, delimiter="\t"):
            exposed = row["exposed_as"]
            if exposed.endswith("_{bucket,sum,count}"):
                base = exposed.removesuffix("_{bucket,sum,count}")
                series.update(f"{base}_{suffix}" for suffix in ("bucket", "sum", "count"))
            else:
                series.add(exposed)
            # e.g. "model_name, engine", "max_lora, ... (NO model_name/engine)", "(none)"
            if "model_name" not in re.findall(r"\w+", row["labels"].split("(")[0]):
                without_model.add(row["name"])
    return frozenset(series), frozenset(without_model)


CURRENT_VLLM_SERIES, VLLM_WITHOUT_MODEL_LABEL = _vllm_catalogue()
VLLM_SERIES: frozenset[str] = CURRENT_VLLM_SERIES | LEGACY_SERIES


# --- per-target data checks ---------------------------------------------------------------------


@dataclass(frozen=True)
class TargetKey:
    """One query of one panel: what the data checks key their expectations by."""

    dashboard_uid: str
    panel_id: int
    ref_id: str


# Targets allowed to return no data on a healthy deployment carrying traffic, in every data set,
# with why. Every other visible target must return data, and a listed one that does return data
# fails the check as out of date.
OPTIONAL_FEATURE_TARGETS: dict[TargetKey, str] = {
    TargetKey("aqua-vllm", 71, "A"): "speculative decoding only: needs a draft model or method",
    TargetKey("aqua-vllm", 72, "A"): "speculative decoding only: needs a draft model or method",
    TargetKey("aqua-vllm", 73, "A"): "speculative decoding only: needs a draft model or method",
    TargetKey("aqua-vllm", 81, "A"): "vllm:lora_requests_info exists only with --enable-lora",
    TargetKey("aqua-health", 42, "A"): "one row per firing alert: empty is the good case",
}
# Empty wherever OCI Monitoring is off (no compartment configured): the "Infrastructure (OCI
# Monitoring)" row and the collector's freshness panels. tests/stack/test_oci_monitoring.py runs
# every one of them with data against the Monitoring stand-in.
OCI_MONITORING_TARGETS: dict[TargetKey, str] = {
    **{
        TargetKey("aqua-vllm", panel, "A"): "OCI Monitoring is off in this stand"
        for panel in range(91, 99)
    },
    TargetKey("aqua-health", 62, "A"): "OCI Monitoring is off: no round ever succeeds",
    TargetKey("aqua-health", 63, "A"): "OCI Monitoring is off: no datapoint is exposed",
    TargetKey("aqua-health", 65, "A"): "OCI Monitoring is off: no API call is made",
    # The fleet table's columns read from OCI Monitoring: GPU utilization, gateway 4xx/5xx ratio.
    TargetKey("aqua-fleet", 6, "K"): "OCI Monitoring is off in this stand",
    TargetKey("aqua-fleet", 6, "L"): "OCI Monitoring is off in this stand",
}
# The "Remote write" row: Prometheus exports remote-storage queue series only with a remote_write
# (REMOTE_WRITE_URL); tests/stack/test_remote_write.py shows each of them with data.
REMOTE_WRITE_TARGETS: dict[TargetKey, str] = {
    TargetKey("aqua-health", panel, ref): "remote_write only: needs REMOTE_WRITE_URL"
    for panel, ref in ((71, "A"), (72, "A"), (73, "A"), (73, "B"), (74, "A"))
}
OPTIONAL_FEATURE_TARGETS.update(REMOTE_WRITE_TARGETS)
# Targets with no data on vLLM releases older than the family they read (no older name exists).
NEW_VLLM_ONLY_TARGETS: dict[TargetKey, str] = {
    TargetKey("aqua-vllm", 23, ref): "vllm:request_time_per_output_token_seconds is V1-only"
    for ref in "ABCDE"
} | {TargetKey("aqua-vllm", 42, "A"): "vllm:num_requests_waiting_by_reason is V1-only"}

# An `or` branch that only fills in zeros: `or vector(0)`, `or on (...) 0 * ...`, or the
# zero line of `zero_if_absent` (`or on () label_replace(0 * ...)`).
_ZERO_BRANCH = re.compile(r" or (?:on \([^)]*\) )?(?:vector\(0\)|0 \* |label_replace\(0 \* )")
_OR = re.compile(r" or (?:on \([^)]*\) |ignoring \([^)]*\) )?")
_OPEN, _CLOSE = "([{", ")]}"


def _depths(expr: str) -> list[int]:
    """Bracket depth at each character, quoted strings (matcher values, regexes) skipped."""
    depths, depth, quote = [], 0, ""
    for i, char in enumerate(expr):
        if quote:
            if char == quote and expr[i - 1] != "\\":
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
        depths.append(depth)
    return depths


def without_zero_fallbacks(expr: str) -> str:
    """`expr` with every branch that only supplies zeros removed, at any depth.

    `count(x) or vector(0)` always returns a value, so checking it cannot show that `x` has data;
    the check runs on `count(x)` alone.
    """
    while match := _ZERO_BRANCH.search(expr):
        depths = _depths(expr)
        level = depths[match.start()]
        end = next((i for i in range(match.end(), len(expr)) if depths[i] < level), len(expr))
        expr = expr[: match.start()] + expr[end:]
    return expr


def or_branches(expr: str) -> list[str]:
    """The top-level alternatives of `a or on (deployment) b or ...` (one item if none)."""
    depths = _depths(expr)
    branches, start, i = [], 0, 0
    while match := _OR.search(expr, i):
        if depths[match.start()] == 0:
            branches.append(expr[start : match.start()])
            start = match.end()
        i = match.end()
    return [*branches, expr[start:]]


def check_targets(
    queries: Sequence[PanelQuery],
    has_data: Callable[[str, bool], bool],
    allowed_absent: Mapping[TargetKey, str],
    may_be_empty: Mapping[TargetKey, str] | None = None,
) -> tuple[list[str], list[str]]:
    """(targets without data that are not allowed to be empty, allowances that had data).

    Every panel target (not template variables) is checked on its own, zero fallbacks removed.
    `has_data(expr, instant)` runs one query. A target in `allowed_absent` must be empty (else the
    allowance is out of date); one in `may_be_empty` (data that occurs at random) may be either.
    """
    may_be_empty = may_be_empty or {}
    missing, out_of_date = [], []
    for query in queries:
        if query.kind != "panel":
            continue
        found = has_data(without_zero_fallbacks(query.expr), query.instant)
        where = f"{query.dashboard_uid} #{query.panel_id} {query.panel_title!r} {query.ref_id}"
        if not found and query.key not in allowed_absent and query.key not in may_be_empty:
            missing.append(where)
        if found and query.key in allowed_absent:
            out_of_date.append(f"{where}: {allowed_absent[query.key]}")
    return missing, out_of_date


@dataclass(frozen=True)
class PanelQuery:
    """One PromQL expression Grafana would send, with where it comes from."""

    dashboard_uid: str
    panel_id: int | None  # None for a template variable.
    panel_title: str  # For a template variable: "variable <name>".
    ref_id: str
    expr: str
    instant: bool = False
    kind: str = "panel"  # "panel" or "variable".

    @property
    def key(self) -> TargetKey:
        return TargetKey(self.dashboard_uid, self.panel_id or 0, self.ref_id)


def load_dashboards(directory: Path = DASHBOARD_DIR) -> dict[str, dict[str, Any]]:
    """Every dashboard JSON in `directory`, by uid (a duplicate uid is an error)."""
    dashboards: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        uid = dashboard.get("uid")
        if not uid:
            raise ValueError(f"{path.name} has no uid")
        if uid in dashboards:
            raise ValueError(f"{path.name} reuses uid {uid!r}")
        dashboards[uid] = dashboard
    return dashboards


def iter_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """All panels, rows included, descending into the panels a collapsed row holds."""

    def walk(panels: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in panels:
            yield panel
            yield from walk(panel.get("panels") or [])

    yield from walk(dashboard.get("panels") or [])


def variables_of(dashboard: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}


# --- substitution ------------------------------------------------------------------------------

# Grafana's variable syntaxes: $var, ${var}, ${var:format}, [[var]], [[var:format]].
_VARIABLE = re.compile(
    r"\$(?P<plain>\w+)"
    r"|\$\{(?P<braced>\w+)(?::(?P<bformat>[^}]+))?\}"
    r"|\[\[(?P<old>\w+)(?::(?P<oformat>[^\]]+))?\]\]"
)
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _seconds(duration: str) -> float:
    match = _DURATION.match(duration)
    if not match:
        raise ValueError(f"unsupported duration {duration!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def prometheus_regex_escape(value: str) -> str:
    """Grafana's `prometheusSpecialRegexEscape`: for a value inside a PromQL regex string."""
    value = value.replace("\\", "\\\\\\\\")
    return re.sub(r"[$^*{}\[\]'+?.()|]", lambda m: "\\\\" + m.group(0), value)


def _regex_escape(value: str) -> str:
    """Grafana's generic `escapeRegex`, used by the `:regex` format."""
    return re.sub(r"[\\^$*+?.()|\[\]{}/]", lambda m: "\\" + m.group(0), value)


def _format(variable: Mapping[str, Any], values: list[str] | None, fmt: str | None) -> str:
    """The text Grafana puts in a Prometheus query for `variable` (values None means All)."""
    if values is None:
        all_value = variable.get("allValue")
        if all_value is None:
            raise ValueError(f"variable {variable['name']!r} has no allValue to use for All")
        return str(all_value)
    if fmt is None:
        if not variable.get("multi") and not variable.get("includeAll"):
            # prometheusRegularEscape: backslashes and single quotes only.
            return ",".join(v.replace("\\", "\\\\").replace("'", "\\\\'") for v in values)
        escaped = [prometheus_regex_escape(v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    if fmt == "regex":
        escaped = [_regex_escape(v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    if fmt == "pipe":
        return "|".join(values)
    if fmt == "raw":
        return ",".join(values)
    if fmt == "csv":
        return ",".join(values)
    raise ValueError(f"unsupported variable format {fmt!r}")


def substitute(
    text: str,
    dashboard: Mapping[str, Any],
    variables: Mapping[str, str | Sequence[str]],
    *,
    rate_interval: str = "1m",
    interval: str = "15s",
    range_: str = "1h",
) -> str:
    """`text` with every dashboard and built-in variable replaced as Grafana would.

    `variables` maps a variable name to a value, a list of values, or `ALL` ("$__all"); a variable
    missing from it takes the value stored in the dashboard (`current`).
    """
    declared = variables_of(dashboard)
    builtins = {
        "__rate_interval": rate_interval,
        "__rate_interval_ms": str(int(_seconds(rate_interval) * 1000)),
        "__interval": interval,
        "__interval_ms": str(int(_seconds(interval) * 1000)),
        "__range": f"{int(_seconds(range_))}s",
        "__range_s": str(int(_seconds(range_))),
        "__range_ms": str(int(_seconds(range_) * 1000)),
    }

    def replace(match: re.Match[str]) -> str:
        name = match.group("plain") or match.group("braced") or match.group("old")
        fmt = match.group("bformat") or match.group("oformat")
        if name in builtins:
            return builtins[name]
        if name.isdigit():
            # Grafana leaves a variable it does not know as it is: `label_replace`'s `$1`.
            return match.group(0)
        if name not in declared:
            raise ValueError(f"undeclared variable ${name} in {text!r}")
        variable = declared[name]
        chosen: str | Sequence[str] = variables.get(name, variable.get("current", {}).get("value"))
        if chosen is None:
            raise ValueError(f"no value for variable ${name}")
        values = [chosen] if isinstance(chosen, str) else list(chosen)
        if ALL in values or "All" in values:
            return _format(variable, None, fmt)
        return _format(variable, values, fmt)

    return _VARIABLE.sub(replace, text)


_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?P<selector>.+?)\s*,\s*(?P<label>\w+)\s*\)\s*$")
_QUERY_RESULT = re.compile(r"^\s*query_result\((?P<expr>.+)\)\s*$", re.DOTALL)


def variable_selector(query: str) -> str:
    """What a variable query sends to Prometheus: the selector of `label_values(selector, label)`
    or the expression of `query_result(expr)` (an instant query)."""
    match = _LABEL_VALUES.match(query) or _QUERY_RESULT.match(query)
    if not match:
        raise ValueError(f"not a label_values(selector, label) or query_result(expr): {query!r}")
    return match.group(1)


def _variable_query(variable: Mapping[str, Any]) -> str:
    query = variable.get("query")
    return query.get("query", "") if isinstance(query, dict) else str(query)


def _js_number(number: float) -> str:
    """A number as JavaScript's String() writes it (integral values without a fraction)."""
    return str(int(number)) if float(number).is_integer() else repr(float(number))


def query_result_text(sample: Mapping[str, Any]) -> str:
    """One instant-query sample as Grafana's `query_result` shows it (PrometheusMetricFindQuery):
    `name{label="value",...} <value> <timestamp ms>`, labels in the order Prometheus sent them,
    joined by `,` without spaces, values unescaped; `__name__` (if any) in front."""
    labels = dict(sample["metric"])
    name = labels.pop("__name__", "")
    body = ",".join(f'{key}="{value}"' for key, value in labels.items())
    timestamp, value = sample["value"]
    return f"{name}{{{body}}} {value} {_js_number(float(timestamp) * 1000)}"


def _js_regex(text: str) -> tuple[re.Pattern[str], bool]:
    """Grafana's `stringToJsRegex` in Python: `/pattern/flags` (else `^text$`), with JavaScript's
    named groups `(?<name>...)` as Python's `(?P<name>...)`; returns (pattern, global flag)."""
    if not text.startswith("/"):
        return re.compile(f"^{text}$"), False
    match = re.fullmatch(r"/(.*?)/([gimsy]*)", text, re.DOTALL)
    if not match:
        raise ValueError(f"not a /regex/flags: {text!r}")
    pattern = re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", match.group(1))
    flags = (re.IGNORECASE if "i" in match.group(2) else 0) | (
        re.MULTILINE if "m" in match.group(2) else 0
    )
    flags |= re.DOTALL if "s" in match.group(2) else 0
    return re.compile(pattern, flags), "g" in match.group(2)


def _apply_variable_regex(regex: str, items: Sequence[str]) -> list[tuple[str, str]]:
    """Grafana's `metricNamesToVariableValues` (default: the regex applies to each item's value,
    which is its text for these queries): items that do not match are dropped; named groups
    `value` and `text` set the option's parts (each the other's fallback); else the first capture
    group sets both (one option per match with the global flag and several matches)."""
    if not regex:
        return [(item, item) for item in items]
    pattern, is_global = _js_regex(regex)
    options: list[tuple[str, str]] = []
    for item in items:
        matches = list(pattern.finditer(item)) if is_global else []
        if not is_global:
            found = pattern.search(item)
            matches = [found] if found else []
        if not matches:
            continue
        value_match = next((m for m in matches if m.groupdict().get("value")), None)
        text_match = next((m for m in matches if m.groupdict().get("text")), None)
        first = next((m for m in matches if m.re.groups >= 1), None)
        if value_match or text_match:
            value = value_match["value"] if value_match else text_match["text"]  # type: ignore[index]
            text = text_match["text"] if text_match else value
            options.append((text, value))
        elif first is not None and len(matches) > 1:
            options.extend((m[1], m[1]) for m in matches)
        elif first is not None:
            options.append((first[1], first[1]))
        else:
            options.append((item, item))
    return options


def variable_options(
    variable: Mapping[str, Any], results: Sequence[Mapping[str, Any]]
) -> list[tuple[str, str]]:
    """The (text, value) options Grafana offers for a query variable, from the instant-query
    `results` of its expression (`panel_queries` gives it, substituted): label values of
    `label_values`, or `query_result` lines, then the variable's regex; unique by value and, for
    `sort` 1, in alphabetical order of their text."""
    query = _variable_query(variable)
    label_values = _LABEL_VALUES.match(query)
    if label_values:
        label = label_values.group("label")
        items = [r["metric"][label] for r in results if r["metric"].get(label)]
    elif _QUERY_RESULT.match(query):
        items = [query_result_text(r) for r in results]
    else:
        raise ValueError(f"unsupported variable query {query!r}")
    options: dict[str, tuple[str, str]] = {}
    for text, value in _apply_variable_regex(variable.get("regex") or "", items):
        options.setdefault(value, (text, value))
    ordered = list(options.values())
    return sorted(ordered, key=lambda option: option[0]) if variable.get("sort") == 1 else ordered


def panel_queries(
    dashboard: Mapping[str, Any],
    variables: Mapping[str, str | Sequence[str]],
    rate_interval: str = "1m",
    interval: str = "15s",
    *,
    range_: str = "1h",
) -> list[PanelQuery]:
    """Every PromQL query of `dashboard` as Grafana would send it, variables substituted.

    Panel targets come first (hidden targets skipped), then the template variables' selectors.
    """
    uid = dashboard["uid"]
    subst = {"rate_interval": rate_interval, "interval": interval, "range_": range_}
    queries: list[PanelQuery] = []
    for panel in iter_panels(dashboard):
        for tgt in panel.get("targets") or []:
            if tgt.get("hide") or not tgt.get("expr"):
                continue
            queries.append(
                PanelQuery(
                    dashboard_uid=uid,
                    panel_id=panel.get("id"),
                    panel_title=panel.get("title", ""),
                    ref_id=tgt.get("refId", ""),
                    expr=substitute(tgt["expr"], dashboard, variables, **subst),
                    instant=bool(tgt.get("instant")) and not tgt.get("range", False),
                )
            )
    for variable in variables_of(dashboard).values():
        if variable.get("type") != "query":
            continue
        query = _variable_query(variable)
        queries.append(
            PanelQuery(
                dashboard_uid=uid,
                panel_id=None,
                panel_title=f"variable {variable['name']}",
                ref_id=variable["name"],
                expr=substitute(variable_selector(query), dashboard, variables, **subst),
                instant=True,
                kind="variable",
            )
        )
    return queries


# --- the fleet table, as Grafana's merge transformation builds it --------------------------------


def table_rows(
    panel: Mapping[str, Any], results: Mapping[str, Sequence[Mapping[str, Any]]]
) -> dict[str, dict[str, Any]]:
    """The rows Grafana shows for a table of instant `format: table` queries merged on
    `deployment`: by deployment, each row's labels plus `Value #<refId>` of every query that
    returned a sample for it (Grafana's `merge` joins the frames on the fields they all share,
    `Time` and `deployment`; a query without a sample for a deployment leaves its cell empty).

    `results` maps each refId of `panel` to Prometheus' instant-query result list.
    """
    rows: dict[str, dict[str, Any]] = {}
    for tgt in panel["targets"]:
        for sample in results.get(tgt["refId"], ()):
            labels = sample["metric"]
            row = rows.setdefault(labels["deployment"], {})
            row.update(labels)
            row[f"Value #{tgt['refId']}"] = float(sample["value"][1])
    return rows


_DATA_FIELD = re.compile(r"\$\{__data\.fields(?:\.(\w+)|\[\"(\w+)\"\])\}")


def resolve_data_link(url: str, row: Mapping[str, Any], time_from: str, time_to: str) -> str:
    """A data link URL as Grafana builds it for `row`: `${__data.fields.<field>}` becomes the
    row's value (URL-encoded) and `${__url_time_range}` the dashboard's `from=...&to=...`."""
    from urllib.parse import quote, urlencode

    def field(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in row:
            raise KeyError(f"the row has no field {name!r} for {url!r}")
        return quote(str(row[name]), safe="")

    resolved = _DATA_FIELD.sub(field, url)
    resolved = resolved.replace(
        "${__url_time_range}", urlencode({"from": time_from, "to": time_to})
    )
    if "${" in resolved:
        raise ValueError(f"unresolved variable in {resolved!r}")
    return resolved
