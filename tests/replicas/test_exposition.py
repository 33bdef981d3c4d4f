"""Line-level exposition surgery: identity, the replica label, and merging into one valid page."""

from __future__ import annotations

import gzip
import subprocess
import time
from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.replicas.exposition import (
    decode_body,
    label_samples,
    merge,
    peek_start_time,
    replica_id,
    split_families,
    start_time_of,
)
from app.unpacked_size import UnpackedTooLarge
from tests.support.replica_pool import make_replicas

LIMIT = 64 << 20  # SCRAPE_BODY_SIZE_LIMIT's default


def _pages(count: int, demo: bool = True) -> list[tuple[str, bytes]]:
    now = time.monotonic()
    return [
        (replica_id(r.start_time), r.render(now + 60))
        for r in make_replicas(count, demo_pages=demo)
    ]


def _promtool_problems(promtool_path, text: bytes) -> tuple[int, set[str]]:
    done = subprocess.run(
        [str(promtool_path), "check", "metrics"], input=text, capture_output=True, timeout=30
    )
    return done.returncode, set(done.stderr.decode().splitlines())


def _families(text: bytes) -> list:
    return list(text_string_to_metric_families(text.decode()))


# --- identity ------------------------------------------------------------------------------------


def test_start_time_is_read_from_the_sample_line_not_the_help_line():
    page = (
        b"# HELP process_start_time_seconds Start time.\n"
        b"# TYPE process_start_time_seconds gauge\n"
        b"process_start_time_seconds_other 5\n"
        b"process_start_time_seconds 1.7957976603e+09\n"
    )
    assert start_time_of(page) == 1795797660.3
    assert start_time_of(b"process_start_time_seconds 12.5") == 12.5
    assert start_time_of(b'x 1\nprocess_start_time_seconds{pid="1"} 42.0\n') == 42.0
    assert start_time_of(b"x 1\n") is None
    assert start_time_of(b"process_start_time_seconds_other 5") is None
    assert start_time_of(b"process_start_time_seconds_other 5\nprocess_start_time_seconds 6") == 6
    assert start_time_of(b"process_start_time_seconds nonsense\n") is None


def test_gzip_bodies_are_inflated_only_as_far_as_the_start_time():
    _, page = _pages(1)[0]
    zipped = gzip.compress(page)
    assert peek_start_time(zipped, "gzip", LIMIT) == start_time_of(page) is not None
    assert peek_start_time(page, None, LIMIT) == start_time_of(page)
    assert peek_start_time(b"not gzip", "gzip", LIMIT) is None
    # At the end of a large page it is still found.
    tail = page + b"".join(b"filler_%d 1\n" % i for i in range(5000))
    moved = tail.replace(b"process_start_time_seconds ", b"process_start_time_secondz ")
    moved += b"process_start_time_seconds 77.0\n"
    assert peek_start_time(gzip.compress(moved), "GZIP", LIMIT) == 77.0
    assert decode_body(zipped, "gzip", LIMIT) == page
    # Split across inflated chunks, and absent from a large page.
    for pad in range(8170, 8200, 3):
        shifted = b"p" * pad + b"\nprocess_start_time_seconds 12.5\nz 1\n"
        assert peek_start_time(gzip.compress(shifted), "gzip", LIMIT) == 12.5
    assert peek_start_time(gzip.compress(b"a 1\n" * 300_000), "gzip", LIMIT) is None


def test_inflating_is_capped_at_the_limit():
    _, page = _pages(1)[0]
    zipped = gzip.compress(page)
    assert decode_body(zipped, "gzip", len(page)) == page
    with pytest.raises(UnpackedTooLarge):
        decode_body(zipped, "gzip", len(page) - 1)
    with pytest.raises(UnpackedTooLarge):
        decode_body(page, None, len(page) - 1)
    # A page without the start time is inflated to its end, but never past the limit.
    absent = gzip.compress(b"a 1\n" * 300_000)
    with pytest.raises(UnpackedTooLarge):
        peek_start_time(absent, "gzip", 1_000_000)


def test_an_overlong_line_is_skipped_not_carried_when_peeking():
    # Lines far longer than a start-time line are skipped (carrying one would copy it again with
    # every 8 kB step: quadratic); the line after one is still read, wherever the steps fall.
    for length in (1 << 20, (1 << 20) + 8191, 70_000):
        page = b"x" * length + b"\nprocess_start_time_seconds 5.0\n"
        assert peek_start_time(gzip.compress(page, 1), "gzip", LIMIT) == 5.0
    assert peek_start_time(gzip.compress(b"y" * (1 << 20), 1), "gzip", LIMIT) is None
    assert peek_start_time(gzip.compress(b"process_start_time_seconds 6.0"), "gzip", LIMIT) == 6.0


def test_replica_ids_are_short_stable_and_follow_the_start_time():
    assert replica_id(1.7957976603e09) == replica_id(1795797660.3)
    assert replica_id(1795797660.3) != replica_id(1795797660.31)
    assert len(replica_id(1.0)) == 8 and replica_id(1.0).isalnum()


# --- labelling -----------------------------------------------------------------------------------


def test_every_sample_line_gets_the_label_and_nothing_else_changes():
    page = (
        b'# HELP a Help with {braces} and a="b".\n'
        b"# TYPE a counter\n"
        b"a_total 1\n"
        b'a_total{x="{not, a label}",y="s p a c e"} 2\n'
        b"a_created{} 3\n"
        b"b\t4\n"
        b'c{replica="theirs"} 5 1700000000000\n'
        b"# a comment\n"
    )
    out = label_samples(page, "r1")
    assert out.splitlines() == [
        b'# HELP a Help with {braces} and a="b".',
        b"# TYPE a counter",
        b'a_total{replica="r1"} 1',
        b'a_total{replica="r1",x="{not, a label}",y="s p a c e"} 2',
        b'a_created{replica="r1"} 3',
        b'b{replica="r1"}\t4',
        b'c{replica="r1",exported_replica="theirs"} 5 1700000000000',
        b"# a comment",
    ]
    with pytest.raises(ValueError):
        label_samples(page, 'bad"id')


def test_labelled_demo_page_parses_with_every_sample_labelled():
    replica, page = _pages(1)[0]
    families = _families(label_samples(page, replica))
    samples = [s for f in families for s in f.samples]
    assert len(samples) > 300
    assert all(s.labels["replica"] == replica for s in samples)
    assert len(samples) == len([s for f in _families(page) for s in f.samples]), (
        "no sample lost or added"
    )


# --- merging -------------------------------------------------------------------------------------


def test_split_groups_suffixes_under_their_family_and_rejoins_reopened_families():
    page = (
        b"stray 1\n"
        b"# HELP h A histogram.\n# TYPE h histogram\n"
        b'h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 3\nh_count 2\n'
        b"# HELP g A gauge.\n# TYPE g gauge\ng 1\n"
        b"# HELP h A histogram.\n# TYPE h histogram\nh_created 9\n"
    )
    families, openmetrics = split_families(page)
    assert not openmetrics
    assert list(families) == [b"", b"h", b"g"]
    assert families[b"h"].header == b"# HELP h A histogram.\n# TYPE h histogram\n"
    assert b"".join(families[b"h"].samples).count(b"\n") == 5


def test_merged_pages_form_one_valid_exposition(promtool_path):
    pages = _pages(3)
    merged = merge([label_samples(page, replica) for replica, page in pages])
    assert merged.dropped_families == 0
    families = _families(merged.text)
    names = [f.name for f in families]
    assert len(names) == len(set(names)), "each family once, contiguous"
    assert merged.text.count(b"# TYPE ") == merged.families == len(families)
    per_replica = Counter(s.labels["replica"] for f in families for s in f.samples)
    assert per_replica == {
        replica: len([s for f in _families(page) for s in f.samples]) for replica, page in pages
    }
    starts = {
        s.labels["replica"]: s.value
        for f in families
        if f.name == "process_start_time_seconds"
        for s in f.samples
    }
    assert {replica_id(v) for v in starts.values()} == set(starts)
    # promtool: no parse error; its lint findings are only those of vLLM's own page (`:` names).
    code, problems = _promtool_problems(promtool_path, merged.text)
    _, original = _promtool_problems(promtool_path, pages[0][1])
    assert code in (0, 3), problems
    assert problems <= original, problems - original


def test_promtool_catches_what_merge_avoids(promtool_path):
    # The check above can fail: concatenating pages repeats HELP lines, which promtool refuses.
    pages = _pages(2, demo=False)
    naive = b"".join(label_samples(page, replica) for replica, page in pages)
    code, problems = _promtool_problems(promtool_path, naive)
    assert code == 1 or any("second HELP" in p for p in problems)


def test_a_family_whose_type_differs_between_replicas_is_left_out_for_the_later_one():
    first = b'# HELP x X.\n# TYPE x gauge\nx{replica="a"} 1\n'
    second = b'# HELP x X, newer.\n# TYPE x counter\nx{replica="b"} 2\n'
    third = b'# HELP x X, reworded.\n# TYPE x gauge\nx{replica="c"} 3\ny 1\n'
    merged = merge([first, second, third])
    assert merged.dropped_families == 1
    assert merged.text == (
        b'# HELP x X.\n# TYPE x gauge\nx{replica="a"} 1\nx{replica="c"} 3\ny 1\n'
    )


def test_openmetrics_pages_keep_one_eof_marker_at_the_end():
    a = b'# HELP x X.\n# TYPE x gauge\nx{replica="a"} 1\n# EOF\n'
    b = b'# HELP x X.\n# TYPE x gauge\nx{replica="b"} 2\n# EOF'
    merged = merge([a, b]).text
    assert merged.endswith(b'x{replica="b"} 2\n# EOF\n')
    assert merged.count(b"# EOF") == 1
