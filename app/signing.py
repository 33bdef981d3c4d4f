"""Signs httpx requests with OCI credentials, and keeps the credentials fresh.

`OciSigningAuth` signs the exact method, Host and raw path+query httpx sends (no `requests`
round trip, so `%7E` stays `%7E`). When a deployment refuses a request (`app.refusal`) signed with a
token that has since gone stale, it refreshes once and retries once. `TokenRefresher` renews tokens
in the background, off the event loop, before they expire.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator

import httpx

from app.credentials import Credentials, WireRequest
from app.proxy_metrics import ProxyMetrics
from app.refusal import REFUSAL_BODY_PREFIX_BYTES, is_refused, may_be_refused

log = logging.getLogger("aqua_metrics.signing")


def sign_request(credentials: Credentials, request: httpx.Request) -> str:
    """Set Date and Authorization on `request`; return the key id that signed it."""
    date = email.utils.formatdate(usegmt=True)
    request.headers["date"] = date
    host = request.headers["host"]
    raw_path = request.url.raw_path.decode("ascii")
    key_id = credentials.key_id
    wire = WireRequest(
        method=request.method,
        url=f"{request.url.scheme}://{host}{raw_path}",
        headers={"date": date, "host": host},
        path_url=raw_path,
    )
    request.headers["authorization"] = credentials.sign(wire)
    return key_id


class TokenRefresher:
    """Renews token credentials off the event loop: on a timer, and once after a refusal."""

    def __init__(
        self,
        credentials: Credentials,
        metrics: ProxyMetrics,
        *,
        check_every_seconds: float,
        refusal_cooldown_seconds: float = 30.0,
    ) -> None:
        self._credentials = credentials
        self._metrics = metrics
        self._check_every = check_every_seconds
        self._cooldown = refusal_cooldown_seconds
        self._last_forced = float("-inf")
        self._lock = asyncio.Lock()
        self.last_error: str | None = None

    async def refresh(self, *, force: bool) -> bool:
        """One refresh attempt in a worker thread; counts and logs the outcome."""
        mode = self._credentials.mode.value
        try:
            changed = await asyncio.to_thread(self._credentials.refresh, force=force)
        except Exception as exc:  # a failed renewal must never stop the proxy
            self._metrics.signer_refresh_failures.labels(mode).inc()
            message = f"{type(exc).__name__}"
            if message != self.last_error:
                log.warning("credential refresh failed (%s, mode %s); will retry", message, mode)
            self.last_error = message
            return False
        if self.last_error is not None:
            log.info("credential refresh recovered (mode %s)", mode)
        self.last_error = None
        if changed:
            self._metrics.signer_refreshes.labels(mode).inc()
            log.info("credentials renewed (mode %s)", mode)
        return changed

    async def refresh_after_refusal(self, signed_with: str) -> bool:
        """True when a retry is worth it: the credentials changed since `signed_with` was used.

        The due-check (file stamps, token expiry) is cheap and always runs; a forced renewal,
        which may call the network, runs at most once per cooldown for the whole process.
        """
        async with self._lock:
            if self._credentials.key_id != signed_with:
                return True
            if await self.refresh(force=False):
                return True
            now = time.monotonic()
            if now - self._last_forced < self._cooldown:
                return False
            self._last_forced = now
            return await self.refresh(force=True)

    async def run(self) -> None:
        """Check for due renewals forever (cancelled at shutdown)."""
        while True:
            await asyncio.sleep(self._check_every)
            async with self._lock:
                await self.refresh(force=False)


class _ReplayedStream(httpx.AsyncByteStream):
    """A response body whose first bytes were already read: yields them, then the rest."""

    def __init__(
        self, head: bytes, rest: AsyncIterator[bytes], source: httpx.AsyncByteStream
    ) -> None:
        self._head = head
        self._rest = rest
        self._source = source

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._head:
            yield self._head
        async for chunk in self._rest:
            yield chunk

    async def aclose(self) -> None:
        await self._source.aclose()


async def peek_body(response: httpx.Response, limit: int) -> bytes:
    """The first `limit` bytes (or fewer) of a streamed body; the response stays readable in full."""
    source = response.stream
    if not isinstance(source, httpx.AsyncByteStream):
        return b""
    chunks = aiter(source)
    head = b""
    while len(head) < limit:
        try:
            head += await anext(chunks)
        except StopAsyncIteration:
            break
    response.stream = _ReplayedStream(head, chunks, source)
    return head[:limit]


class OciSigningAuth(httpx.Auth):
    """httpx auth (async clients) over an SDK signer; one refresh-and-retry on a refused token."""

    def __init__(self, credentials: Credentials, refresher: TokenRefresher | None) -> None:
        self._credentials = credentials
        self._refresher = refresher

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        signed_with = sign_request(self._credentials, request)
        response = yield request
        if self._refresher is None or not may_be_refused(response.status_code):
            return
        body_start = await peek_body(response, REFUSAL_BODY_PREFIX_BYTES)
        if not is_refused(response.status_code, body_start):
            return
        if await self._refresher.refresh_after_refusal(signed_with):
            log.info("deployment refused a stale token; retrying once with renewed credentials")
            sign_request(self._credentials, request)
            yield request
