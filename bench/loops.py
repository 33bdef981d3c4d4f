"""The two baselines of the CPU benchmark, each run in its own process and measuring itself.

bare        the irreducible work of a scrape: sign with one cached `oci.signer.Signer`, fetch with
            one pooled `httpx.Client` (sync: the cheapest httpx path), read the raw body (relayed
            as is, gzip and all, as the proxy does).
bare-async  the same with one pooled `httpx.AsyncClient` inside `asyncio.timeout`, as the proxy
            fetches: what an asyncio proxy cannot avoid before it serves anything.
seed        what Oracle's sample proxy does per scrape: build a new `oci.signer.Signer` (loads the
            private key) and make a blocking `requests.get(url, auth=signer)` (a new session and
            connection each time; the body is decoded, as the sample returns the text). `requests`
            is the copy the oci SDK ships (`oci._vendor.requests`) when the package is absent.

CPU is `time.process_time()` (user + system, all threads) over each repeat of `--iterations`
scrapes, after `--warmup` scrapes. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import configparser
import email.utils
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class _Wire:
    """What an SDK signer reads: method, url, headers, path_url, body."""

    method: str
    url: str
    headers: dict[str, str]
    path_url: str
    body: bytes | None = None


def _profile(config_file: str) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(config_file)
    return dict(parser["DEFAULT"])


def _new_signer(profile: dict[str, str]) -> Any:
    from oci.signer import Signer

    return Signer(
        tenancy=profile["tenancy"],
        user=profile["user"],
        fingerprint=profile["fingerprint"],
        private_key_file_location=profile["key_file"],
    )


def _header_signer(url: str, profile: dict[str, str]) -> Callable[[], dict[str, str]]:
    """Headers of one signed GET of `url`, as Prometheus sends them, with one cached signer: the
    signing work both bare loops do per scrape."""
    signer = _new_signer(profile)
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")

    def sign() -> dict[str, str]:
        date = email.utils.formatdate(usegmt=True)
        wire = _Wire("GET", url, {"date": date, "host": parts.netloc}, path)
        signed = signer.do_request_sign(wire, enforce_content_headers=False)
        return {
            "accept": "text/plain;version=0.0.4;q=1,*/*;q=0.1",
            "accept-encoding": "gzip",
            "content-length": "0",
            "date": date,
            "authorization": signed.headers["authorization"],
        }

    return sign


def bare_scraper(url: str, profile: dict[str, str]) -> Callable[[], int]:
    import httpx

    sign = _header_signer(url, profile)
    client = httpx.Client(timeout=10.0)

    def scrape() -> int:
        request = client.build_request("GET", url, headers=sign())
        response = client.send(request, stream=True)
        size = sum(len(chunk) for chunk in response.iter_raw())
        response.close()
        if response.status_code != 200:
            raise RuntimeError(f"bare loop: upstream answered {response.status_code}")
        return size

    return scrape


def bare_async_scraper(url: str, profile: dict[str, str]) -> Callable[[], Awaitable[int]]:
    import asyncio

    import httpx

    sign = _header_signer(url, profile)
    client = httpx.AsyncClient(timeout=10.0)

    async def scrape() -> int:
        request = client.build_request("GET", url, headers=sign())
        async with asyncio.timeout(10.0):
            response = await client.send(request, stream=True)
            size = 0
            async for chunk in response.aiter_raw():
                size += len(chunk)
            await response.aclose()
        if response.status_code != 200:
            raise RuntimeError(f"bare-async loop: upstream answered {response.status_code}")
        return size

    return scrape


def seed_scraper(url: str, profile: dict[str, str]) -> Callable[[], int]:
    try:
        import requests  # type: ignore[import-untyped]
    except ImportError:
        from oci._vendor import requests  # type: ignore[no-redef]

    def scrape() -> int:
        signer = _new_signer(profile)
        response = requests.get(url, auth=signer, timeout=10)
        if response.status_code != 200:
            raise RuntimeError(f"seed loop: upstream answered {response.status_code}")
        return len(response.content)

    return scrape


def _measure(
    scrape: Callable[[], int], iterations: int, repeats: int, warmup: int
) -> dict[str, Any]:
    for _ in range(warmup):
        scrape()
    cpu_ms, wall_ms = [], []
    size = 0
    for _ in range(repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(iterations):
            size = scrape()
        cpu_ms.append((time.process_time() - cpu) * 1000 / iterations)
        wall_ms.append((time.perf_counter() - wall) * 1000 / iterations)
    return {"cpu_ms": cpu_ms, "wall_ms": wall_ms, "body_bytes": size}


async def _measure_async(
    scrape: Callable[[], Awaitable[int]], iterations: int, repeats: int, warmup: int
) -> dict[str, Any]:
    for _ in range(warmup):
        await scrape()
    cpu_ms, wall_ms = [], []
    size = 0
    for _ in range(repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(iterations):
            size = await scrape()
        cpu_ms.append((time.process_time() - cpu) * 1000 / iterations)
        wall_ms.append((time.perf_counter() - wall) * 1000 / iterations)
    return {"cpu_ms": cpu_ms, "wall_ms": wall_ms, "body_bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["bare", "bare-async", "seed"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--config", required=True, help="OCI config file (DEFAULT profile)")
    parser.add_argument("--iterations", type=int, required=True)
    parser.add_argument("--repeats", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    profile = _profile(args.config)
    counts = (args.iterations, args.repeats, args.warmup)
    if args.mode == "bare-async":
        import asyncio

        async def run_async() -> dict[str, Any]:
            return await _measure_async(bare_async_scraper(args.url, profile), *counts)

        result = asyncio.run(run_async())
    else:
        make = bare_scraper if args.mode == "bare" else seed_scraper
        result = _measure(make(args.url, profile), *counts)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
