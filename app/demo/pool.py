"""Several simulated replicas behind one URL, answering as a load balancer would.

A model deployment with N instances serves `/predict/metrics` from whichever instance the load
balancer picks, and each instance is its own vLLM with its own counters and process start time.
`ReplicaPool` renders one of its replicas, picked at random per request; every replica is a
separate simulation (its own seed, counters and `process_start_time_seconds`), so the demo shows
what the proxy's replica handling (`app.replicas`) does, end to end.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence

from app.demo.exposition import DemoDeployment
from app.demo.profile import WARMUP_S, EngineProfile

# Replicas of a pool started one after another, this far apart (as a deployment's instances come
# up), so each has its own start time and hence its own replica id.
REPLICA_START_STAGGER_S = 47.0
_SEED_STRIDE = 1000  # Replica k of a member with seed s simulates with seed s + k * stride.


class ReplicaPool:
    """`render()` answers as one of `replicas`, picked at random (seeded, so tests repeat)."""

    def __init__(self, replicas: Sequence[DemoDeployment], seed: int | None = None) -> None:
        if not replicas:
            raise ValueError("a replica pool needs at least one replica")
        self.replicas = tuple(replicas)
        self._pick = random.Random(seed)  # noqa: S311 - a load balancer's pick, not cryptography

    def render(self) -> bytes:
        return self._pick.choice(self.replicas).render()


def replica_pool(
    model_name: str,
    count: int,
    *,
    profile: EngineProfile | None,
    seed: int,
    clock: Callable[[], float] = time.monotonic,
    started: float | None = None,
) -> ReplicaPool:
    """`count` replicas of one simulated deployment, replica k started k stagger steps before the
    first (`started`, default: the wall-clock time the simulation's warm-up began)."""
    first = round(time.time() - WARMUP_S, 2) if started is None else started
    replicas = [
        DemoDeployment(
            model_name,
            seed=seed + k * _SEED_STRIDE,
            clock=clock,
            profile=profile,
            start_time=first - k * REPLICA_START_STAGGER_S,
        )
        for k in range(count)
    ]
    return ReplicaPool(replicas, seed=seed)
