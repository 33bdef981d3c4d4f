"""How large a metrics page is once uncompressed, measured while it streams in.

A deployment may answer with `Content-Encoding: gzip`; the wire-size limit (MAX_RESPONSE_BYTES)
then says nothing about what Prometheus, or the replica merging, will have to hold: 200 KB of gzip
can unpack to 200 MB. `UnpackedSizeMeter` inflates each chunk in bounded steps, counts the output
and throws it away, so the proxy refuses such a page (SCRAPE_BODY_SIZE_LIMIT) with constant memory,
before anything downstream unpacks it.
"""

from __future__ import annotations

import zlib

_STEP_BYTES = 256 * 1024  # inflate at most this much at a time
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_IDENTITY = {"", "identity"}
_GZIP = {"gzip", "x-gzip"}


class UnpackedTooLarge(Exception):
    """The page unpacks to more than the limit."""


class UnreadableEncoding(Exception):
    """The page uses a content coding we cannot measure, or its gzip stream is corrupt."""


class UnpackedSizeMeter:
    """Feed it the raw chunks of one body; it raises as soon as the unpacked size passes `limit`."""

    def __init__(self, content_encoding: str | None, limit: int) -> None:
        encoding = (content_encoding or "").strip().lower()
        if encoding not in _IDENTITY | _GZIP:
            raise UnreadableEncoding(f"content coding {encoding!r} is not supported")
        self._gzip = encoding in _GZIP
        self._inflater = zlib.decompressobj(_GZIP_WBITS)
        self._limit = limit
        self.size = 0

    def feed(self, chunk: bytes) -> None:
        if not self._gzip:
            self._count(len(chunk))
            return
        pending = chunk
        try:
            while pending:
                self._count(len(self._inflater.decompress(pending, _STEP_BYTES)))
                pending = self._inflater.unconsumed_tail
                if self._inflater.eof:
                    # Another gzip member may follow (Go's reader, like Prometheus', reads them all).
                    pending = self._inflater.unused_data + pending
                    self._inflater = zlib.decompressobj(_GZIP_WBITS)
        except zlib.error as exc:
            raise UnreadableEncoding(f"corrupt gzip data ({exc})") from None

    def _count(self, size: int) -> None:
        self.size += size
        if self.size > self._limit:
            raise UnpackedTooLarge(self.size)
