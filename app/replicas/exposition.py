"""Line-level surgery on Prometheus text exposition pages: identity, a `replica` label, merging.

vLLM answers in the text format 0.0.4 (prometheus_client's `generate_latest`): every family opens
with `# HELP name` and `# TYPE name` and its samples (`_bucket`, `_sum`, `_count`, `_total`, and
`_created` where enabled, which 0.0.4 exposes as its own gauge family) follow the header until the
next family's header. So a family is a *block of lines* opened by its header, and nothing here
builds an object per sample:

- `start_time_of` finds `process_start_time_seconds` with one `bytes.find` (and
  `peek_start_time` decompresses a gzip body only as far as that line, near the top of a vLLM
  page, where prometheus_client's process collector puts it); every decompression here goes
  through `app.unpacked_size`, capped at SCRAPE_BODY_SIZE_LIMIT;
- `label_samples` inserts `replica="<id>"` first in each sample line's label set (one C-level
  `replace` of the line's first brace); `#` lines, label values and HELP text are untouched;
- `merge` splits each page at its header lines (one `finditer`) and writes each family once: its
  header from the first page that has it, then every page's samples of that family.

Why not `prometheus_client.parser.text_string_to_metric_families`: it builds a Metric and a
Sample per line. Measured by bench/replicas_bench.py on a real-sized vLLM page (53 kB, 530
lines): 6.7 ms to parse one page (11 ms on a busier run), against ~0.17 ms to label it and
~0.06 ms to split it here, so ~30x slower; parsing alone would cost several times the proxy's
whole scrape today (~1.2 ms), and for 3 replicas ~20 ms per scrape instead of ~0.8 ms;
re-rendering from its objects would also rewrite values (`1.0` vs `1`) and drop comments. The
line-level approach keeps each sample line byte-for-byte apart from the inserted label.

Limits (none occurs in vLLM's pages): a sample before any header is kept in a nameless leading
block; a family whose samples are split by another family's header is re-joined under its first
header; metric names quoted in braces (the UTF-8 syntax of Prometheus 3, only sent when asked for)
are not supported. OpenMetrics pages (`# EOF`) keep their format: the marker is moved to the end.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from app.unpacked_size import Unpacker, UnreadableEncoding, is_gzip, unpack

REPLICA_LABEL = "replica"
START_TIME_METRIC = b"process_start_time_seconds"
EOF_MARKER = b"# EOF\n"

_PEEK_CHUNK = 8192
_LONGEST_LINE = 64 * 1024  # a start-time line is ~100 bytes; longer lines are skipped when peeking
_HASH = ord("#")
_EXISTING_REPLICA = re.compile(rb"([{,])" + REPLICA_LABEL.encode() + rb'="')
# A literal first character lets `re` skip ahead quickly; `^` with MULTILINE is ~5x slower here.
_HEADER = re.compile(rb"\n# (?:HELP|TYPE|UNIT) (\S+)[^\n]*")
_TYPE_LINE = re.compile(rb"^# TYPE \S+ (\S+)", re.MULTILINE)
_REPLICA_ID = re.compile(r"[0-9a-z]{1,16}")


def replica_id(start_time: float) -> str:
    """Short stable id of a replica: 8 hex digits of a hash of its process start time.

    The start time is normalised through `float` so `1.7e+09` and `1700000000.0` agree; a restarted
    process has a new start time, hence a new id."""
    return hashlib.blake2s(repr(float(start_time)).encode(), digest_size=4).hexdigest()


def _next_start_line(text: bytes, start: int) -> int:
    found = text.find(b"\n" + START_TIME_METRIC, start)
    return -1 if found < 0 else found + 1


def start_time_of(text: bytes) -> float | None:
    """The value of `process_start_time_seconds` in a decoded page, or None if absent."""
    at = 0 if text.startswith(START_TIME_METRIC) else _next_start_line(text, 0)
    while at >= 0:
        end = text.find(b"\n", at)
        end = len(text) if end < 0 else end
        rest = text[at + len(START_TIME_METRIC) : end]
        if rest[:1] == b"{":
            rest = rest[rest.rfind(b"}") + 1 :]
        elif rest[:1] not in (b" ", b"\t"):
            at = _next_start_line(text, end)  # a longer name that starts with ours
            continue
        fields = rest.split()
        try:
            return float(fields[0]) if fields else None
        except ValueError:
            return None
    return None


def peek_start_time(body: bytes, content_encoding: str | None, limit: int) -> float | None:
    """`start_time_of` for a body as fetched, decompressing a gzip body only as far as needed.

    Inflation goes through the capped `Unpacker` (`UnpackedTooLarge` past `limit`; a corrupt
    stream reads as no start time). Each inflated chunk is searched once, with the unfinished last
    line of the previous one, so a page without the metric costs one pass, not one per chunk; a
    line longer than `_LONGEST_LINE` is skipped rather than carried (it cannot be the start time,
    and carrying it would copy it again with every chunk)."""
    if not is_gzip(content_encoding):
        return start_time_of(body)
    carry = b""  # the unfinished last line so far (starts at a line start)
    skipping = False  # inside an overlong line: drop everything up to its end
    try:
        for chunk in Unpacker(content_encoding, limit, step=_PEEK_CHUNK).pieces(body):
            if skipping:
                newline = chunk.find(b"\n")
                if newline < 0:
                    continue
                chunk, skipping = chunk[newline + 1 :], False
            window = carry + chunk
            cut = window.rfind(b"\n") + 1
            if cut:
                value = start_time_of(window[:cut])
                if value is not None:
                    return value
            carry = window[cut:]
            if len(carry) > _LONGEST_LINE:
                carry, skipping = b"", True
    except UnreadableEncoding:
        return None
    return None if skipping else start_time_of(carry)


def decode_body(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The identity-encoded page (gunzipped when the upstream sent gzip), through the capped
    `unpack`: `UnpackedTooLarge` once it passes `limit` bytes."""
    return unpack(body, content_encoding, limit)


def label_samples(text: bytes, replica: str) -> bytes:
    """Every sample line of `text` with `replica="<replica>"` first in its label set.

    A label already named `replica` in the page is renamed `exported_replica`, as Prometheus does
    for a clashing target label. A plain loop over lines with one C-level `replace` per line:
    measured ~2x faster here than regular-expression substitutions (whose per-match cost
    dominates on short lines) and than labelling a whole family with a few `bytes.replace` calls
    on `<name><suffix>{` (lines are ~100 bytes, so each extra scan costs more than it saves)."""
    opening, alone = _label_parts(replica)
    return _label_lines(text, opening, alone)


def _label_parts(replica: str) -> tuple[bytes, bytes]:
    if not _REPLICA_ID.fullmatch(replica):
        raise ValueError(f"replica id {replica!r} is not a short lowercase id")
    label = f'{REPLICA_LABEL}="{replica}"'.encode()
    return b"{" + label + b",", b"{" + label + b"}"


def _label_lines(text: bytes, opening: bytes, alone: bytes) -> bytes:
    if b'replica="' in text:
        text = _EXISTING_REPLICA.sub(rb'\1exported_replica="', text)
    out = []
    append = out.append
    for line in text.split(b"\n"):
        if not line or line[0] == _HASH:
            append(line)
            continue
        brace = line.find(b"{")
        # Most lines: `name{labels} value`; one C-level replace of the first brace.
        if brace >= 0 and line[brace + 1 : brace + 2] != b"}" and line.find(b" ", 0, brace) < 0:
            append(line.replace(b"{", opening, 1))
            continue
        space = line.find(b" ")
        if brace < 0 or 0 <= space < brace:
            if space < 0:
                space = line.find(b"\t")
            append(line[:space] + alone + line[space:] if space > 0 else line)
        else:
            append(line[:brace] + alone + line[brace + 2 :])
    return b"\n".join(out)


@dataclass
class _Family:
    header: bytes
    samples: list[bytes]


def split_families(text: bytes) -> tuple[dict[bytes, _Family], bool]:
    """The families of one page, in page order, and whether it ended with `# EOF`.

    Keys are the names on the header lines (b"" for samples before any header). Header lines are
    kept only where a family first opens; a family re-opened later in the page is re-joined."""
    openmetrics = text.rstrip(b"\n").endswith(b"# EOF")
    if openmetrics:
        text = text[: text.rfind(b"# EOF")]
    families: dict[bytes, _Family] = {}
    current = families[b""] = _Family(b"", [])
    current_name = b""
    header_open = False
    padded = b"\n" + text
    cursor = 1  # where the page's first line starts in `padded`
    for match in _HEADER.finditer(padded):
        start = match.start() + 1
        if start > cursor:
            current.samples.append(padded[cursor:start])
            header_open = False
        name = match.group(1)
        if name != current_name:
            existing = families.get(name)
            header_open = existing is None
            current = existing or families.setdefault(name, _Family(b"", []))
            current_name = name
        if header_open:
            current.header += padded[start : match.end()] + b"\n"
        cursor = match.end() + 1
    if cursor < len(padded):
        current.samples.append(padded[cursor:])
    if not families[b""].samples:
        del families[b""]
    return families, openmetrics


def _family_type(header: bytes) -> bytes | None:
    match = _TYPE_LINE.search(header)
    return match.group(1) if match else None


def _ends_line(chunk: bytes) -> bytes:
    return chunk if not chunk or chunk.endswith(b"\n") else chunk + b"\n"


@dataclass(frozen=True)
class MergeResult:
    text: bytes
    families: int
    dropped_families: int  # families of a page whose TYPE disagreed with the first page's


@dataclass(frozen=True)
class SplitPage:
    """One page cut into families (see `split_families`)."""

    families: dict[bytes, _Family]
    openmetrics: bool


def split_page(text: bytes) -> SplitPage:
    return SplitPage(*split_families(text))


def merge(pages: Sequence[bytes]) -> MergeResult:
    """`merge_split` of pages given as text."""
    return merge_split([split_page(page) for page in pages])


def merge_split(pages: Sequence[SplitPage]) -> MergeResult:
    """One exposition from several labelled pages: one header per family, families contiguous.

    Families keep the order of the first page that has them. A family whose TYPE differs from the
    one already written (replicas of different vLLM versions) is left out for that page, since one
    family cannot carry two types."""
    merged: dict[bytes, _Family] = {}
    types: dict[bytes, bytes | None] = {}
    dropped = 0
    any_openmetrics = False
    for page in pages:
        any_openmetrics |= page.openmetrics
        for name, family in page.families.items():
            existing = merged.get(name)
            if existing is None:
                merged[name] = _Family(family.header, list(family.samples))
                continue
            if family.header != existing.header:
                if name not in types:
                    types[name] = _family_type(existing.header)
                if _family_type(family.header) != types[name]:
                    dropped += 1
                    continue
            existing.samples.extend(family.samples)
    out = b"".join(
        family.header + b"".join(_ends_line(chunk) for chunk in family.samples)
        for family in merged.values()
    )
    if any_openmetrics:
        out += EOF_MARKER
    return MergeResult(out, len(merged), dropped)
