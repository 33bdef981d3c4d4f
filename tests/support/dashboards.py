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
to the selector, so a test can check that each variable would find values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = REPO_ROOT / "grafana" / "provisioning" / "dashboards" / "aqua"

ALL = "$__all"  # The value Grafana stores for an "All" selection.

# Panel titles (unique across dashboards) allowed to return no data on a healthy deployment that
# carries traffic; every other panel must show data.
OPTIONAL_PANELS: frozenset[str] = frozenset(
    {
        # Speculative decoding: the families exist only when a draft model / method is configured.
        "Draft acceptance rate",
        "Mean acceptance length",
        "Accepted tokens / s by draft position",
        # LoRA: vllm:lora_requests_info exists only when vLLM runs with --enable-lora.
        "LoRA adapters (latest)",
        # Monitoring health: one row per firing alert; empty is the good case.
        "Firing alert instances",
    }
)

# Panels that have no data on vLLM releases older than the metric they read (the legacy-format
# fixture): these families have no older name to fall back to.
NEW_VLLM_ONLY_PANELS: frozenset[str] = frozenset(
    {
        "Time per output token (per request)",  # vllm:request_time_per_output_token_seconds
        "Waiting requests by reason",  # vllm:num_requests_waiting_by_reason
    }
)


# --- vLLM metric names --------------------------------------------------------------------------
# Series names of the vLLM V1 engine as exposed on /metrics (counters with `_total`), taken from
# vLLM's metrics loggers; a typo such as llm-d's `vllm:num_preemptions` (no `_total`, never matches)
# fails the tests instead of leaving a panel or an alert silently empty.
_VLLM_PLAIN = (
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:num_requests_waiting_by_reason",
    "vllm:engine_sleep_state",
    "vllm:kv_cache_usage_perc",
    "vllm:prefix_cache_queries_total",
    "vllm:prefix_cache_hits_total",
    "vllm:external_prefix_cache_queries_total",
    "vllm:external_prefix_cache_hits_total",
    "vllm:mm_cache_queries_total",
    "vllm:mm_cache_hits_total",
    "vllm:num_preemptions_total",
    "vllm:prompt_tokens_total",
    "vllm:prompt_tokens_by_source_total",
    "vllm:prompt_tokens_cached_total",
    "vllm:generation_tokens_total",
    "vllm:request_success_total",
    "vllm:cache_config_info",
    "vllm:corrupted_requests_total",
    "vllm:lora_requests_info",
    "vllm:spec_decode_num_drafts_total",
    "vllm:spec_decode_num_draft_tokens_total",
    "vllm:spec_decode_num_accepted_tokens_total",
    "vllm:spec_decode_num_accepted_tokens_per_pos_total",
    "vllm:nixl_num_failed_transfers_total",
    "vllm:nixl_num_failed_notifications_total",
    "vllm:nixl_num_kv_expired_reqs_total",
    "vllm:estimated_flops_per_gpu_total",
    "vllm:estimated_read_bytes_per_gpu_total",
    "vllm:estimated_write_bytes_per_gpu_total",
    "vllm:kv_offload_total_bytes_total",
    "vllm:kv_offload_total_time_total",
    "vllm:hf3fs_num_failed_save_total",
    "vllm:hf3fs_num_failed_load_total",
    "vllm:websocket_connections_active",
    "vllm:websocket_connections_total",
)
# Histograms, by base name: each exposes `_bucket`, `_sum` and `_count`.
_VLLM_HISTOGRAMS = (
    "vllm:request_prompt_tokens",
    "vllm:request_generation_tokens",
    "vllm:iteration_tokens_total",
    "vllm:request_max_num_generation_tokens",
    "vllm:request_params_n",
    "vllm:request_params_max_tokens",
    "vllm:time_to_first_token_seconds",
    "vllm:inter_token_latency_seconds",
    "vllm:request_time_per_output_token_seconds",
    "vllm:e2e_request_latency_seconds",
    "vllm:request_queue_time_seconds",
    "vllm:request_inference_time_seconds",
    "vllm:request_prefill_time_seconds",
    "vllm:request_decode_time_seconds",
    "vllm:request_prefill_kv_computed_tokens",
    "vllm:kv_block_lifetime_seconds",
    "vllm:kv_block_idle_before_evict_seconds",
    "vllm:kv_block_reuse_gap_seconds",
    "vllm:nixl_xfer_time_seconds",
    "vllm:nixl_post_time_seconds",
    "vllm:nixl_bytes_transferred",
    "vllm:nixl_num_descriptors",
    "vllm:kv_offload_size",
    "vllm:hf3fs_save_duration_seconds",
    "vllm:hf3fs_load_duration_seconds",
    "vllm:websocket_connection_duration_seconds",
)
# Names only older vLLM releases expose (renamed in 0.8-0.11, removed in 0.12-0.15).
_VLLM_LEGACY_PLAIN = (
    "vllm:gpu_cache_usage_perc",
    "vllm:gpu_prefix_cache_queries_total",
    "vllm:gpu_prefix_cache_hits_total",
    "vllm:gpu_prefix_cache_hit_rate",
)
_VLLM_LEGACY_HISTOGRAMS = ("vllm:time_per_output_token_seconds",)

VLLM_SERIES: frozenset[str] = frozenset(
    [*_VLLM_PLAIN, *_VLLM_LEGACY_PLAIN]
    + [
        f"{base}_{suffix}"
        for base in (*_VLLM_HISTOGRAMS, *_VLLM_LEGACY_HISTOGRAMS)
        for suffix in ("bucket", "sum", "count")
    ]
)
# vLLM families that carry no `model_name` label (so a `model_name=~` matcher would drop them).
VLLM_WITHOUT_MODEL_LABEL: frozenset[str] = frozenset(
    {
        "vllm:cache_config_info",
        "vllm:lora_requests_info",
        "vllm:websocket_connections_active",
        "vllm:websocket_connections_total",
        "vllm:websocket_connection_duration_seconds",
    }
)


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
    def optional(self) -> bool:
        return self.panel_title in OPTIONAL_PANELS


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


def variable_selector(query: str) -> str:
    """The series selector of a `label_values(selector, label)` variable query."""
    match = _LABEL_VALUES.match(query)
    if not match:
        raise ValueError(f"not a label_values(selector, label) query: {query!r}")
    return match.group("selector")


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
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
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
