"""A histogram cheap enough for the demo simulation: per-bucket counts plus a sum, fed many equal
observations at once, rendered as exposition buckets."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from prometheus_client.utils import floatToGoString


class Histogram:
    """Non-cumulative bucket counts plus a sum; `add` records many equal observations at once."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(float(b) for b in bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Record one observation (`le` semantics: a value equal to a bound falls in its bucket)."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def add(self, value: float, count: int, total: float) -> None:
        """Record `count` observations placed in `value`'s bucket whose values sum to `total`."""
        if count > 0:
            self.counts[bisect_left(self.bounds, value)] += count
            self.sum += total

    def cumulative(self) -> list[tuple[str, float]]:
        """Exposition buckets: `(le, cumulative count)` pairs ending with `+Inf`."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            out.append((floatToGoString(bound), float(running)))
        out.append(("+Inf", float(running + self.counts[-1])))
        return out
