"""A minimal keep-alive HTTP/1.1 scrape client on asyncio streams.

It sends what Prometheus sends (Accept, Accept-Encoding: gzip, the scrape timeout header) and
reads Content-Length bodies. Being far cheaper than a full client library, it leaves the CPU of
the 2-core machine to the process under test.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;"
    "escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
)


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    body_bytes: int = 0


class Connection:
    """One keep-alive connection to 127.0.0.1:port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(
                "127.0.0.1", self.port, limit=2**22
            )
        assert self.reader is not None
        self.writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Accept: {PROMETHEUS_ACCEPT}\r\nAccept-Encoding: gzip\r\n"
                "User-Agent: Prometheus/3.5.3\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n"
            ).encode()
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = None
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            lowered = name.strip().lower()
            if lowered == "content-length":
                length = int(value)
            elif lowered == "connection" and value.strip().lower() == "close":
                close = True
            elif lowered == "transfer-encoding":
                raise RuntimeError("chunked responses are not supported by the bench client")
        if length is None:
            raise RuntimeError(f"no Content-Length from {path}")
        body = await self.reader.readexactly(length)
        if close:
            await self.close()
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def run_load(port: int, paths: list[str], concurrency: int, total: int) -> Result:
    """`concurrency` workers, each on its own connection and its own path (round robin), share
    `total` requests; each request's wall latency is recorded."""
    result = Result()
    remaining = [total]

    async def worker(index: int) -> None:
        connection = Connection(port)
        path = paths[index % len(paths)]
        try:
            while remaining[0] > 0:
                remaining[0] -= 1
                started = time.perf_counter()
                status, body = await connection.get(path)
                result.latencies.append(time.perf_counter() - started)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                result.body_bytes += len(body)
        finally:
            await connection.close()

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return result


def load(port: int, paths: list[str], concurrency: int, total: int) -> Result:
    return asyncio.run(run_load(port, paths, concurrency, total))
