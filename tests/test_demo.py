"""The demo deployment imitates a real vLLM V1 `/metrics` page, and the legacy fixture an older one.

The catalogue the demo renders (`app.vllm_catalogue`) is checked against vLLM's own metric
definitions in tests/data/vllm-metrics.tsv (copied from the project's reference material; see
tests/data/README.md): names, types, label names, HELP text and bucket boundaries. A wrong entry
fails here rather than in a dashboard.
"""

from __future__ import annotations

import csv
import json
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.demo import DEMO_CONTENT_TYPE, DemoDeployment
from app.demo.profile import MAX_CATCH_UP_S, MAX_MODEL_LEN, MAX_NUM_SEQS
from app.vllm_catalogue import (
    LEGACY_BY_NAME,
    LEGACY_FAMILIES,
    V1_BY_NAME,
    V1_FAMILIES,
    build_1_2_5_buckets,
)
from tests.support.vllm_payloads import LegacyVllm

REFERENCE_TSV = Path(__file__).parent / "data" / "vllm-metrics.tsv"
TOKEN_SERIES = "1-2-5 series up to max_model_len"


def vllm_reference() -> dict[str, dict[str, str]]:
    """vLLM's metric definitions by name (columns: name, type, exposed_as, labels, buckets, ...)."""
    with REFERENCE_TSV.open(encoding="utf-8", newline="") as handle:
        return {row["name"]: row for row in csv.DictReader(handle, delimiter="\t")}


REFERENCE = vllm_reference()

# What the dashboards, alerts and the demo's promise need; all must be exposed.
REQUIRED = {
    "vllm:num_requests_running", "vllm:num_requests_waiting",
    "vllm:num_requests_waiting_by_reason", "vllm:kv_cache_usage_perc",
    "vllm:prefix_cache_queries", "vllm:prefix_cache_hits", "vllm:num_preemptions",
    "vllm:prompt_tokens", "vllm:generation_tokens", "vllm:request_success",
    "vllm:request_prompt_tokens", "vllm:request_generation_tokens", "vllm:iteration_tokens_total",
    "vllm:time_to_first_token_seconds", "vllm:inter_token_latency_seconds",
    "vllm:request_time_per_output_token_seconds", "vllm:e2e_request_latency_seconds",
    "vllm:request_queue_time_seconds", "vllm:request_inference_time_seconds",
    "vllm:request_prefill_time_seconds", "vllm:request_decode_time_seconds",
    "vllm:cache_config_info",
}  # fmt: skip
# Optional features, absent on a plain text-model deployment.
ABSENT = {
    "vllm:engine_sleep_state", "vllm:lora_requests_info", "vllm:spec_decode_num_drafts",
    "vllm:spec_decode_num_accepted_tokens", "vllm:external_prefix_cache_queries",
    "vllm:mm_cache_queries", "vllm:corrupted_requests", "vllm:kv_block_lifetime_seconds",
    "vllm:nixl_xfer_time_seconds", "vllm:kv_offload_size", "vllm:websocket_connections_active",
}  # fmt: skip


class FakeClock:
    """A settable, thread-safe clock for deterministic simulated time."""

    def __init__(self, start: float = 5000.0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def parse(payload: bytes) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(payload.decode())}


def value(families: dict, family: str, sample: str | None = None, **labels: str) -> float:
    """The value of the one sample of `family` named `sample` whose labels include `labels`."""
    wanted = sample or family
    found = [
        s.value
        for s in families[family].samples
        if s.name == wanted and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, (family, wanted, labels, found)
    return found[0]


def series(families: dict) -> dict[tuple, float]:
    """Every sample as {(name, sorted labels): value}."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
    }


def ttft_totals(families: dict) -> tuple[float, float]:
    fam = "vllm:time_to_first_token_seconds"
    return (
        value(families, fam, fam + "_sum"),
        value(families, fam, fam + "_count"),
    )


# --- format and families ------------------------------------------------------------------------


def test_render_is_parseable_exposition_text():
    assert DEMO_CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
    payload = DemoDeployment(seed=1, clock=FakeClock()).render()
    assert isinstance(payload, bytes)
    families = parse(payload)
    assert "vllm:num_requests_running" in families
    text = payload.decode()
    assert "# HELP vllm:prompt_tokens_total " in text
    assert "# TYPE vllm:prompt_tokens_total counter" in text
    assert "# TYPE vllm:e2e_request_latency_seconds histogram" in text
    assert 'le="+Inf"' in text


def test_promtool_parses_the_demo_page(promtool_path):
    """The real Prometheus parser accepts the page; the only lints are vLLM's own naming."""
    clock = FakeClock()
    demo = DemoDeployment(seed=2, clock=clock)
    demo.render()
    clock.advance(60)
    for payload in (demo.render(), LegacyVllm(clock=clock).render()):
        proc = subprocess.run(
            [str(promtool_path), "check", "metrics"],
            input=payload,
            capture_output=True,
            timeout=60,
            check=False,
        )
        output = (proc.stdout + proc.stderr).decode()
        assert proc.returncode in (0, 3), output
        assert "error" not in output.lower(), output
        for line in filter(None, output.splitlines()):
            assert line.endswith("metric names should not contain ':'") or line.endswith(
                'non-counter metrics should not have "_total" suffix'
            ), line


def test_the_reference_table_is_vllms_v1_engine():
    assert len(REFERENCE) == 62
    assert {row["type"] for row in REFERENCE.values()} == {"counter", "gauge", "histogram"}


def test_catalogue_names_types_and_help_are_vllms():
    vllm = [f for f in V1_FAMILIES if f.name.startswith("vllm:")]
    for spec in vllm:
        row = REFERENCE.get(spec.name)
        assert row is not None, f"{spec.name} is not a vLLM V1 metric"
        assert spec.type == row["type"], spec.name
        assert spec.exposed_name == row["exposed_as"].removesuffix("_{bucket,sum,count}")
        # The reference cuts HELP at 200 characters.
        assert spec.help.startswith(row["help"]) and row["help"], spec.name
    names = {f.name for f in vllm}
    assert names >= REQUIRED
    assert not names & ABSENT
    # Everything else in the catalogue is the FastAPI instrumentator's, not vLLM's.
    assert {f.name for f in V1_FAMILIES} - names == {
        "http_requests",
        "http_request_duration_seconds",
    }


def test_catalogue_labels_are_vllms():
    for spec in V1_FAMILIES:
        row = REFERENCE.get(spec.name)
        if row is None:
            continue
        if spec.name == "vllm:cache_config_info":
            # "engine + one label per CacheConfig field (block_size, cache_dtype, ...)"
            listed = row["labels"].split("(", 1)[1].rstrip(")").split(", ")
            assert spec.labels[0] == "engine"
            assert {name for name in listed if name != "..."} <= set(spec.labels)
            continue
        assert spec.labels == tuple(row["labels"].split(", ")), spec.name


def test_catalogue_buckets_are_vllms():
    for spec in V1_FAMILIES:
        row = REFERENCE.get(spec.name)
        if row is None or spec.type != "histogram":
            continue
        if row["buckets"] == TOKEN_SERIES:
            assert spec.token_buckets and not spec.buckets, spec.name
        else:
            assert not spec.token_buckets, spec.name
            assert spec.buckets == tuple(float(b) for b in json.loads(row["buckets"])), spec.name


def test_token_buckets_are_a_1_2_5_series_up_to_max_model_len():
    assert build_1_2_5_buckets(8192) == (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
    assert build_1_2_5_buckets(10_000)[-1] == 10_000


def test_legacy_names_are_kept_apart_from_current_vllm():
    assert len(LEGACY_BY_NAME) == len(LEGACY_FAMILIES)
    assert not set(LEGACY_BY_NAME) & set(REFERENCE)
    assert not set(LEGACY_BY_NAME) & set(V1_BY_NAME)
    for spec in LEGACY_FAMILIES:
        assert spec.labels == ("model_name",), spec.name  # before the `engine` label (0.8.3)


def test_every_family_has_its_type_labels_and_buckets():
    families = parse(DemoDeployment(seed=3, clock=FakeClock()).render())
    for spec in V1_FAMILIES:
        parsed_name = spec.name.removesuffix("_total") if spec.type == "counter" else spec.name
        fam = families.get(parsed_name)
        assert fam is not None, spec.name
        assert fam.type == spec.type, spec.name
        assert fam.samples, spec.name
        for sample in fam.samples:
            assert set(sample.labels) - {"le"} == set(spec.labels), (spec.name, sample)
            if spec.name.startswith("vllm:") and "model_name" in spec.labels:
                assert sample.labels["model_name"] == "demo/Llama-3.1-8B-Instruct"
                assert sample.labels["engine"] == "0"
            if spec.type == "counter":
                assert sample.name == parsed_name + "_total"
        if spec.type == "histogram":
            les = [s.labels["le"] for s in fam.samples if s.name.endswith("_bucket")]
            expected = [*spec.bounds(MAX_MODEL_LEN), float("inf")]
            per_series = len(expected)
            assert len(les) % per_series == 0
            assert [float(le) for le in les[:per_series]] == expected, spec.name
            suffixes = {s.name.removeprefix(parsed_name) for s in fam.samples}
            assert suffixes == {"_bucket", "_sum", "_count"}, spec.name
    assert not {name for name in families if name in ABSENT}
    assert {s.labels["finished_reason"] for s in families["vllm:request_success"].samples} == {
        "stop",
        "length",
        "abort",
    }
    assert {
        s.labels["reason"] for s in families["vllm:num_requests_waiting_by_reason"].samples
    } == {
        "capacity",
        "deferred",
    }


def test_page_starts_with_the_process_collector_families():
    clock = FakeClock()
    demo = DemoDeployment(seed=3, clock=clock, start_time=1_795_000_000.25)
    first = demo.render()
    assert first.startswith(b"# HELP process_")
    families = parse(first)
    kinds = {name: families[name].type for name in families if name.startswith("process_")}
    assert kinds == {
        "process_virtual_memory_bytes": "gauge",
        "process_resident_memory_bytes": "gauge",
        "process_start_time_seconds": "gauge",
        "process_cpu_seconds": "counter",
        "process_open_fds": "gauge",
        "process_max_fds": "gauge",
    }
    # What the proxy tells replicas apart by, read the way it reads it.
    from app.replicas.exposition import start_time_of

    assert start_time_of(first) == 1_795_000_000.25
    clock.advance(60)
    later = parse(demo.render())
    assert value(later, "process_start_time_seconds") == 1_795_000_000.25
    cpu = "process_cpu_seconds_total"
    assert value(later, "process_cpu_seconds", cpu) > value(families, "process_cpu_seconds", cpu)
    # By default the process started (wall clock) when its simulated history began.
    default = DemoDeployment(seed=3, clock=clock).start_time
    assert time.time() - 200 < default < time.time()


def test_http_families_look_like_the_fastapi_instrumentator():
    clock = FakeClock()
    demo = DemoDeployment(seed=4, clock=clock)
    demo.render()
    clock.advance(30)
    families = parse(demo.render())
    samples = families["http_requests"].samples
    assert {s.name for s in samples} == {"http_requests_total"}
    handlers = {s.labels["handler"] for s in samples}
    assert {"/v1/chat/completions", "/v1/completions", "/metrics", "/health"} <= handlers
    assert {s.labels["status"] for s in samples} <= {"2xx", "4xx", "5xx"}
    assert {s.labels["method"] for s in samples} <= {"GET", "POST"}
    assert value(families, "http_requests", "http_requests_total", handler="/metrics") == 1
    assert "model_name" not in {k for s in samples for k in s.labels}


# --- consistency -------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 7])
def test_counters_and_histograms_never_decrease(seed):
    clock = FakeClock()
    demo = DemoDeployment(seed=seed, clock=clock)
    previous = series(parse(demo.render()))
    steps = [0.2, 1, 3, 15, 15, 7, 0, 30, 60, 200, 15, 2, 45, 90, 15, 15, 1000, 15, 5, 15] * 3
    for step in steps:
        clock.advance(step)
        families = parse(demo.render())
        current = series(families)
        for key, val in current.items():
            name = key[0]
            monotonic = name.endswith(("_total", "_bucket", "_count", "_sum"))
            if monotonic and key in previous:
                assert val >= previous[key], key
        assert set(previous) - set(current) == set(), "a series disappeared"
        previous = current


def test_histograms_agree_with_counters_and_gauges():
    clock = FakeClock()
    demo = DemoDeployment(seed=5, clock=clock)
    for _ in range(40):
        clock.advance(15)
        f = parse(demo.render())
        finished = sum(s.value for s in f["vllm:request_success"].samples)
        for fam in (
            "vllm:e2e_request_latency_seconds",
            "vllm:request_queue_time_seconds",
            "vllm:request_inference_time_seconds",
            "vllm:request_prefill_time_seconds",
            "vllm:request_decode_time_seconds",
            "vllm:request_prompt_tokens",
            "vllm:request_generation_tokens",
            "vllm:request_max_num_generation_tokens",
            "vllm:request_params_n",
            "vllm:request_params_max_tokens",
            "vllm:request_prefill_kv_computed_tokens",
        ):
            assert value(f, fam, fam + "_count") == finished, fam
        for fam in (s.name for s in V1_FAMILIES if s.type == "histogram"):
            label_sets = {
                tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
                for s in f[fam].samples
            }
            for labels in label_sets:
                match = dict(labels)
                buckets = [
                    s.value
                    for s in f[fam].samples
                    if s.name == fam + "_bucket"
                    and all(s.labels.get(k) == v for k, v in match.items())
                ]
                assert buckets == sorted(buckets), fam
                assert buckets[-1] == value(f, fam, fam + "_count", **match), fam
        generated = value(f, "vllm:generation_tokens", "vllm:generation_tokens_total")
        gen_hist = value(f, "vllm:request_generation_tokens", "vllm:request_generation_tokens_sum")
        assert generated >= gen_hist
        prompt = value(f, "vllm:prompt_tokens", "vllm:prompt_tokens_total")
        assert prompt >= value(f, "vllm:request_prompt_tokens", "vllm:request_prompt_tokens_sum")
        by_source = {s.labels["source"]: s.value for s in f["vllm:prompt_tokens_by_source"].samples}
        assert sum(by_source.values()) == prompt
        cached = value(f, "vllm:prompt_tokens_cached", "vllm:prompt_tokens_cached_total")
        assert by_source["local_cache_hit"] == cached
        hits = value(f, "vllm:prefix_cache_hits", "vllm:prefix_cache_hits_total")
        queries = value(f, "vllm:prefix_cache_queries", "vllm:prefix_cache_queries_total")
        assert 0 < hits < queries
        itl = value(f, "vllm:inter_token_latency_seconds", "vllm:inter_token_latency_seconds_count")
        assert itl <= generated
        waiting = value(f, "vllm:num_requests_waiting")
        by_reason = sum(s.value for s in f["vllm:num_requests_waiting_by_reason"].samples)
        assert by_reason == waiting
        assert 0 <= value(f, "vllm:kv_cache_usage_perc") <= 1
        assert 0 <= value(f, "vllm:num_requests_running") <= MAX_NUM_SEQS
    hit_rate = hits / queries
    assert 0.2 < hit_rate < 0.8


# --- dynamics ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_ten_minutes_show_queueing_kv_pressure_preemptions_and_aborts(seed):
    clock = FakeClock()
    demo = DemoDeployment(seed=seed, clock=clock)
    first = parse(demo.render())
    waiting, kv = [], []
    by_queue: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    prev_waiting = value(first, "vllm:num_requests_waiting")
    prev_ttft = ttft_totals(first)
    for _ in range(120):
        clock.advance(5)
        f = parse(demo.render())
        now_waiting = value(f, "vllm:num_requests_waiting")
        waiting.append(now_waiting)
        kv.append(value(f, "vllm:kv_cache_usage_perc"))
        ttft = ttft_totals(f)
        if prev_waiting >= 10 and now_waiting >= 10:
            bucket = "long"
        elif prev_waiting == 0 and now_waiting == 0:
            bucket = "empty"
        else:
            bucket = "between"
        by_queue[bucket][0] += ttft[0] - prev_ttft[0]
        by_queue[bucket][1] += ttft[1] - prev_ttft[1]
        prev_waiting, prev_ttft = now_waiting, ttft
    last = f
    assert max(waiting) > 0
    assert min(waiting) == 0
    assert max(kv) > 0.9
    assert min(kv) < 0.5
    assert value(last, "vllm:num_preemptions", "vllm:num_preemptions_total") > value(
        first, "vllm:num_preemptions", "vllm:num_preemptions_total"
    )
    abort = "vllm:request_success_total"
    assert value(last, "vllm:request_success", abort, finished_reason="abort") > value(
        first, "vllm:request_success", abort, finished_reason="abort"
    )
    long_sum, long_count = by_queue["long"]
    empty_sum, empty_count = by_queue["empty"]
    assert long_count > 0 and empty_count > 0
    assert long_sum / long_count > 5 * (empty_sum / empty_count)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_every_panel_has_data_within_thirty_seconds(seed):
    clock = FakeClock()
    demo = DemoDeployment(seed=seed, clock=clock)
    first = series(parse(demo.render()))
    saw_waiting = False
    for _ in range(6):
        clock.advance(5)
        f = parse(demo.render())
        saw_waiting |= value(f, "vllm:num_requests_waiting") > 0
    last = series(f)
    assert saw_waiting

    def grew(name: str, **labels: str) -> bool:
        keys = [k for k in last if k[0] == name and all((a, b) in k[1] for a, b in labels.items())]
        assert keys, name
        return all(last[k] > first.get(k, 0) for k in keys)

    for name in (
        "vllm:prompt_tokens_total",
        "vllm:generation_tokens_total",
        "vllm:prefix_cache_queries_total",
        "vllm:prefix_cache_hits_total",
        "vllm:iteration_tokens_total_count",
    ):
        assert grew(name), name
    for reason in ("stop", "length", "abort"):
        assert grew("vllm:request_success_total", finished_reason=reason), reason
    for spec in V1_FAMILIES:
        if spec.type == "histogram" and spec.name.startswith("vllm:"):
            assert grew(spec.name + "_count"), spec.name
    assert grew("http_requests_total", handler="/v1/chat/completions", status="2xx")
    running = [v for k, v in last.items() if k[0] == "vllm:num_requests_running"]
    kv = [v for k, v in last.items() if k[0] == "vllm:kv_cache_usage_perc"]
    assert running[0] > 0 and kv[0] > 0
    assert [v for k, v in last.items() if k[0] == "vllm:cache_config_info"] == [1.0]
    preemptions = [v for k, v in last.items() if k[0] == "vllm:num_preemptions_total"]
    assert len(preemptions) == 1


# --- determinism, clock handling, threads ------------------------------------------------------


def _renders(seed: int, steps: list[float]) -> list[bytes]:
    clock = FakeClock()
    demo = DemoDeployment("m", seed=seed, clock=clock, start_time=1.7e9)
    out = [demo.render()]
    for step in steps:
        clock.advance(step)
        out.append(demo.render())
    return out


def test_same_seed_gives_the_same_output():
    steps = [5, 15, 0.5, 60, 15]
    assert _renders(11, steps) == _renders(11, steps)
    assert _renders(11, steps) != _renders(12, steps)


def test_a_long_gap_is_not_replayed():
    clock = FakeClock()
    demo = DemoDeployment(seed=6, clock=clock)
    demo.render()
    before = demo.engine.now
    clock.advance(86_400)
    parse(demo.render())
    assert demo.engine.now - before <= MAX_CATCH_UP_S + 1
    clock.advance(15)
    demo.render()
    assert demo.engine.now - before <= MAX_CATCH_UP_S + 16


def test_concurrent_renders_are_safe():
    clock = FakeClock()
    demo = DemoDeployment(seed=8, clock=clock)
    results: list[bytes] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(10):
                clock.advance(1)
                results.append(demo.render())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 80
    for payload in results:
        parse(payload)
    final = parse(demo.render())
    assert value(final, "http_requests", "http_requests_total", handler="/metrics") == 80


# --- legacy vLLM payloads ----------------------------------------------------------------------

# What each older version exposed (types come from the catalogue).
LEGACY_06 = {
    "vllm:gpu_cache_usage_perc",
    "vllm:cpu_cache_usage_perc",
    "vllm:num_requests_swapped",
    "vllm:gpu_prefix_cache_hit_rate",
    "vllm:cpu_prefix_cache_hit_rate",
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:time_per_output_token_seconds",
    "vllm:time_to_first_token_seconds",
    "vllm:e2e_request_latency_seconds",
    "vllm:request_queue_time_seconds",
    "vllm:time_in_queue_requests",
    "vllm:request_prompt_tokens",
    "vllm:request_generation_tokens",
    "vllm:prompt_tokens",
    "vllm:generation_tokens",
    "vllm:tokens",
    "vllm:num_preemptions",
    "vllm:request_success",
    "vllm:cache_config_info",
}
LEGACY_08 = {
    "vllm:gpu_cache_usage_perc",
    "vllm:gpu_prefix_cache_queries",
    "vllm:gpu_prefix_cache_hits",
    "vllm:time_per_output_token_seconds",
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:request_success",
    "vllm:e2e_request_latency_seconds",
}
CURRENT_ONLY = {
    "vllm:kv_cache_usage_perc",
    "vllm:prefix_cache_queries",
    "vllm:prefix_cache_hits",
    "vllm:inter_token_latency_seconds",
    "vllm:request_time_per_output_token_seconds",
    "vllm:num_requests_waiting_by_reason",
    "vllm:prompt_tokens_by_source",
    "vllm:prompt_tokens_cached",
    "vllm:request_prefill_kv_computed_tokens",
}


@pytest.mark.parametrize(("version", "expected"), [("0.6", LEGACY_06), ("0.8", LEGACY_08)])
def test_legacy_payload_has_old_names_and_no_engine_label(version, expected):
    clock = FakeClock()
    legacy = LegacyVllm(clock=clock, version=version)
    first = parse(legacy.render())
    gauges: dict[str, set[float]] = defaultdict(set)
    for _ in range(24):
        clock.advance(5)
        last = parse(legacy.render())
        for name in ("vllm:num_requests_running", "vllm:gpu_cache_usage_perc"):
            gauges[name].add(value(last, name))
    for name in expected:
        assert name in last, name
        assert last[name].type == (LEGACY_BY_NAME.get(name) or V1_BY_NAME[name]).type, name
    assert not CURRENT_ONLY & set(last)
    for fam in last.values():
        for sample in fam.samples:
            assert "engine" not in sample.labels, sample
            if fam.name.startswith("vllm:") and fam.name != "vllm:cache_config_info":
                assert sample.labels["model_name"] == "legacy/Mistral-7B-Instruct-v0.2"
    for name in ("vllm:prompt_tokens", "vllm:generation_tokens"):
        assert value(last, name, name + "_total") > value(first, name, name + "_total")
    for values in gauges.values():
        assert len(values) > 3
    reasons = {s.labels["finished_reason"] for s in last["vllm:request_success"].samples}
    assert reasons == ({"stop", "length"} if version == "0.6" else {"stop", "length", "abort"})


def test_legacy_06_uses_v0_buckets():
    families = parse(LegacyVllm(clock=FakeClock()).render())

    def bounds(name: str) -> list[float]:
        return [float(s.labels["le"]) for s in families[name].samples if s.name == name + "_bucket"]

    assert bounds("vllm:time_to_first_token_seconds")[-2:] == [10.0, float("inf")]
    assert bounds("vllm:time_per_output_token_seconds") == [
        0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, float("inf"),
    ]  # fmt: skip
    assert bounds("vllm:e2e_request_latency_seconds")[0] == 0.3
    assert bounds("vllm:e2e_request_latency_seconds")[-2:] == [60.0, float("inf")]
    assert 0 <= value(families, "vllm:gpu_prefix_cache_hit_rate") <= 1


# --- the demo fleet ----------------------------------------------------------------------------


def fleet_page(member, clock):
    from app.demo.exposition import DemoDeployment as Page

    return Page(member.served_model_name, profile=member.profile, seed=member.seed, clock=clock)


def test_fleet_members_differ_and_carry_discovered_labels():
    from app.demo.fleet import MAX_DEMO_DEPLOYMENTS, demo_fleet
    from app.discovery.naming import LABEL_NAMES
    from app.targets import TARGET_NAME_PATTERN, labels_for

    members = demo_fleet(MAX_DEMO_DEPLOYMENTS)
    for attribute in ("name", "display_name", "ocid", "seed"):
        values = [getattr(m, attribute) for m in members]
        assert len(set(values)) == len(values), attribute
    assert len({m.aqua_model for m in members[:3]}) == 3
    assert len({m.profile for m in members}) >= 4
    assert [m.flaky for m in members].count(True) == 1
    for member in members:
        target = member.target()
        assert TARGET_NAME_PATTERN.match(target.name)
        assert set(target.labels) == {*LABEL_NAMES, "demo"}
        assert target.labels["demo"] == "true" and target.labels["inference_container"] == "vllm"
        assert all(target.labels.values()), target.labels
        # The fake OCID is well formed: the same parser as for configured URLs reads it and its
        # region key.
        parsed = labels_for(member.name, member.as_deployment().url + "/predict/metrics")
        assert parsed["deployment_ocid"] == member.ocid
        assert parsed["region"] == member.region
    with pytest.raises(ValueError):
        demo_fleet(0)
    with pytest.raises(ValueError):
        demo_fleet(MAX_DEMO_DEPLOYMENTS + 1)


def test_fleet_behaviours_busy_slow_and_growing_queue():
    from app.demo.fleet import demo_fleet

    busy, slow, _flaky = demo_fleet(3)
    clock = FakeClock()
    pages = {m.name: fleet_page(m, clock) for m in (busy, slow)}
    first = {name: parse(page.render()) for name, page in pages.items()}
    waiting: dict[str, list[float]] = {name: [] for name in pages}
    for _ in range(60):  # 5 simulated minutes
        clock.advance(5)
        for name, page in pages.items():
            waiting[name].append(value(parse(page.render()), "vllm:num_requests_waiting"))
    last = {name: parse(page.render()) for name, page in pages.items()}

    def tokens(families):
        return value(families, "vllm:generation_tokens", "vllm:generation_tokens_total")

    made = {name: tokens(last[name]) - tokens(first[name]) for name in pages}
    assert made[busy.name] > 3 * made[slow.name], made
    # The slow deployment's queue grows: its last minute waits longer than its first.
    slow_queue = waiting[slow.name]
    assert max(slow_queue) > 50
    assert sum(slow_queue[-12:]) > sum(slow_queue[:12])
    info = value(
        last[slow.name], "vllm:cache_config_info", num_gpu_blocks=str(slow.profile.num_gpu_blocks)
    )
    assert info == 1


def test_outage_schedule():
    from app.demo.fleet import OutageSchedule

    schedule = OutageSchedule(first_s=70, every_s=900, length_s=240)
    assert [schedule.outage_at(t) for t in (0, 69.9, 70, 309.9, 310, 969.9, 970, 1209.9, 1210)] == [
        None, None, 0, 0, None, None, 1, 1, None,
    ]  # fmt: skip


def test_flaky_member_answers_503_then_refuses_connections_during_outages():
    import asyncio

    import httpx

    from app.demo.fleet import OutageSchedule, demo_fleet
    from app.demo.transport import demo_transport

    busy, _slow, flaky = demo_fleet(3)
    clock = FakeClock()
    schedule = OutageSchedule(first_s=10, every_s=100, length_s=20)

    flaky_transport = demo_transport(flaky.target(), schedule, clock)
    busy_transport = demo_transport(busy.target(), schedule, clock)

    async def status(transport, url: str) -> int | str:
        async with httpx.AsyncClient(transport=transport) as client:
            try:
                return (await client.get(url)).status_code
            except httpx.ConnectError:
                return "refused"

    async def run() -> list:
        seen = []
        for elapsed in (5, 15, 115, 135):  # before, in outage 0, in outage 1, after
            clock.now = 5000.0 + elapsed
            seen.append(await status(flaky_transport, flaky.url))
        clock.now = 5015.0
        seen.append(await status(busy_transport, busy.url))  # only the flaky member has outages
        return seen

    assert asyncio.run(run()) == [200, 503, "refused", 200, 200]


def test_demo_fleet_is_in_the_inventory_metric():
    from app.demo.fleet import demo_targets
    from app.demo.inventory import demo_inventory_collector
    from app.targets import demo_target

    collector = demo_inventory_collector(demo_targets(3))
    assert collector is not None
    (info,) = [f for f in collector.collect() if f.name == "aqua_deployment_info"]
    rows = {s.labels["deployment"]: s.labels for s in info.samples}
    for target in demo_targets(3):
        expected = {k: v for k, v in target.labels.items() if k != "demo"}
        assert rows[target.name] == {**expected, "lifecycle_state": "ACTIVE"}
    assert demo_inventory_collector([]) is None
    assert demo_inventory_collector([demo_target()]) is None, "not a fleet member"


def test_busy_member_runs_two_replicas_and_its_target_says_so():
    from app.demo.fleet import MAX_DEMO_DEPLOYMENTS, demo_fleet

    members = demo_fleet(MAX_DEMO_DEPLOYMENTS)
    assert [m.name for m in members if m.replicas > 1] == ["demo-chat"]
    for member in members:
        target = member.target()
        assert target.instance_count == member.replicas == member.as_deployment().instance_count


def test_two_replica_member_answers_as_a_load_balancer_over_two_simulations():
    import asyncio

    import httpx

    from app.demo.fleet import demo_fleet
    from app.demo.transport import demo_transport

    (chat,) = [m for m in demo_fleet(3) if m.replicas > 1]
    clock = FakeClock()
    transport = demo_transport(chat.target(), clock=clock)

    async def pages(count: int) -> list[bytes]:
        async with httpx.AsyncClient(transport=transport) as client:
            return [(await client.get(chat.url)).content for _ in range(count)]

    by_replica: dict[float, list[dict]] = defaultdict(list)
    for _ in range(30):
        clock.advance(5)
        for page in asyncio.run(pages(2)):
            families = parse(page)
            by_replica[value(families, "process_start_time_seconds")].append(series(families))
    assert len(by_replica) == 2, "each replica has its own process start time"
    assert all(len(seen) > 5 for seen in by_replica.values()), "picked at random, both often"
    # Each replica's counters only grow; the two replicas' counters are their own.
    finished = "vllm:request_success_total"
    last = {}
    for start, seen in by_replica.items():
        totals = [sum(v for (name, _), v in page.items() if name == finished) for page in seen]
        assert totals == sorted(totals), start
        last[start] = totals[-1]
    assert len(set(last.values())) == 2, last


def test_the_proxy_gathers_both_replicas_of_the_demo_member():
    import asyncio

    import httpx

    from app.demo.fleet import demo_fleet
    from app.demo.transport import demo_transport
    from app.replicas.gather import FetchedPage, gather, suggested_fetch_cap
    from app.replicas.tracker import ReplicaTracker

    (chat,) = [m for m in demo_fleet(3) if m.replicas > 1]
    target = chat.target()
    clock = FakeClock()
    transport = demo_transport(target, clock=clock)
    tracker = ReplicaTracker(
        max_age_seconds=30, learn_window_seconds=60, max_retained_bytes=64 << 20
    )

    async def scrape():
        async with httpx.AsyncClient(transport=transport) as client:

            async def fetch() -> FetchedPage:
                response = await client.get(chat.url)
                return FetchedPage(response.content, response.headers["content-type"])

            return await gather(
                fetch,
                tracker,
                deadline_seconds=10,
                max_fetches=suggested_fetch_cap(2) * 4,
                max_unpacked_bytes=64 << 20,
                instance_count=target.instance_count,
            )

    gathered = asyncio.run(scrape())
    assert gathered.replicas_served == 2 and gathered.rewritten
    families = parse(gathered.body)
    replicas = {s.labels["replica"] for s in families["process_start_time_seconds"].samples}
    assert len(replicas) == 2
    running = families["vllm:num_requests_running"].samples
    assert sorted(s.labels["replica"] for s in running) == sorted(replicas)
