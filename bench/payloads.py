"""Real-sized vLLM `/metrics` payloads built from the demo deployment's exposition.

One demo render (`app.demo.DemoDeployment`) is ~39 KB: 330 series of one engine. Bigger payloads
add whole series groups of further simulated engines (data-parallel ranks, `engine="1".."7"`) and,
past eight, further served model names, each group from its own seeded simulation so values differ
as they would. Groups are appended inside their families, so the result stays valid exposition
text with no duplicate series; families without a model label (HTTP, cache config) stay as they
are.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from app.demo import DemoDeployment

BASE_MODEL = "demo/Llama-3.1-8B-Instruct"
EXTRA_MODELS = ("demo/Qwen2.5-7B-Instruct", "demo/Mistral-7B-Instruct-v0.3", "demo/gemma-2-9b-it")
ENGINES_PER_MODEL = 8
SIZES = {"p50k": 50_000, "p1m": 1_000_000}


@dataclass(frozen=True)
class Payload:
    name: str
    body: bytes
    gzipped: bytes
    series: int
    groups: int


def _families(text: str) -> list[tuple[str, list[str], list[str]]]:
    """(name, header lines, sample lines) per family, in order."""
    families: list[tuple[str, list[str], list[str]]] = []
    for line in text.splitlines():
        if line.startswith("# HELP "):
            families.append((line.split()[2], [line], []))
        elif line.startswith("#"):
            families[-1][1].append(line)
        elif line:
            families[-1][2].append(line)
    return families


def _group(index: int) -> tuple[str, str]:
    """(model_name, engine) of padding group `index` (0 is the base render)."""
    models = (BASE_MODEL, *EXTRA_MODELS)
    return models[index // ENGINES_PER_MODEL % len(models)], str(index % ENGINES_PER_MODEL)


def _render(index: int) -> list[tuple[str, list[str], list[str]]]:
    model, _ = _group(index)
    demo = DemoDeployment(model_name=model, seed=1000 + index, clock=lambda: 0.0)
    return _families(demo.render().decode())


def build_payload(name: str, target_bytes: int) -> Payload:
    """A payload of at least `target_bytes`, grown one family of one (engine, model) group at a
    time, so it overshoots by at most one family's samples."""
    base = _render(0)
    samples = {family: list(lines) for family, _, lines in base}
    size = sum(len(line) + 1 for _, headers, lines in base for line in (*headers, *lines))
    groups = 1
    while size < target_bytes:
        if groups >= ENGINES_PER_MODEL * (1 + len(EXTRA_MODELS)):
            raise ValueError(f"cannot reach {target_bytes} bytes with distinct series")
        _, engine = _group(groups)
        for family, _, lines in _render(groups):
            extra = [
                line.replace('engine="0"', f'engine="{engine}"')
                for line in lines
                if 'engine="0"' in line and 'model_name="' in line
            ]
            samples[family].extend(extra)
            size += sum(len(line) + 1 for line in extra)
            if size >= target_bytes:
                break
        groups += 1
    text = "".join(
        "".join(h + "\n" for h in headers) + "".join(s + "\n" for s in samples[family])
        for family, headers, _ in base
    )
    body = text.encode()
    series = _check(text)
    return Payload(name, body, gzip.compress(body, compresslevel=6), series, groups)


_SERIES = re.compile(r"^([^\s{]+)(\{[^}]*\})?\s")


def _check(text: str) -> int:
    """Parse the exposition (raises if invalid) and count series, refusing duplicates."""
    for _ in text_string_to_metric_families(text):
        pass
    seen: set[str] = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            match = _SERIES.match(line)
            assert match is not None, line
            key = match.group(0)
            if key in seen:
                raise ValueError(f"duplicate series {key}")
            seen.add(key)
    return len(seen)


def build_all() -> dict[str, Payload]:
    return {name: build_payload(name, size) for name, size in SIZES.items()}


if __name__ == "__main__":
    for payload in build_all().values():
        print(
            f"{payload.name}: {len(payload.body)} bytes, {payload.series} series, "
            f"{payload.groups} groups, gzip {len(payload.gzipped)} bytes"
        )
