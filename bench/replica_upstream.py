"""`bench.upstream` answering as several replicas behind one endpoint, picked at random.

Run as its own process (`python -m bench.replica_upstream` with `bench.upstream`'s options), so
its CPU never counts against the proxy. Payload files named `<name>@<k>.prom` are the replicas of
deployment `<name>`: each `GET /<name>/<ocid>/predict/metrics` is answered with one of them
chosen at random (seeded), as a model deployment's load balancer does; every other payload is
served as by `bench.upstream` (signature checks, gzip, `/__stats` alike: it is the same server).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from bench import upstream

SEED = 20261127


class RandomReplicaPayloads(dict[str, tuple[bytes, bytes]]):
    """The payload table `bench.upstream.Upstream` looks names up in, with `<name>` resolving to
    one of the `<name>@<k>` payloads at random."""

    def __init__(self, payloads: dict[str, tuple[bytes, bytes]], seed: int = SEED) -> None:
        super().__init__(payloads)
        self._replicas: dict[str, list[tuple[bytes, bytes]]] = {}
        for name in sorted(payloads):
            base, at, _ = name.partition("@")
            if at:
                self._replicas.setdefault(base, []).append(payloads[name])
        self._random = random.Random(seed)

    def get(self, name: str, default: Any = None) -> Any:
        replicas = self._replicas.get(name)
        if replicas:
            return self._random.choice(replicas)
        return super().get(name, default)


def _load_replica_payloads(directory: Path) -> dict[str, tuple[bytes, bytes]]:
    return RandomReplicaPayloads(_load_payloads(directory))


_load_payloads = upstream.load_payloads

if __name__ == "__main__":
    # The same server and command line, with the replica-aware payload table.
    upstream.load_payloads = _load_replica_payloads
    upstream.main()
