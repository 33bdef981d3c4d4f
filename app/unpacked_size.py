"""How large a metrics page is once uncompressed, and the one capped way to uncompress it.

A deployment may answer with `Content-Encoding: gzip`; the wire-size limit (MAX_RESPONSE_BYTES)
then says nothing about what Prometheus, or the replica merging, will have to hold: 200 KB of gzip
can unpack to 200 MB. Every inflation in the proxy goes through `Unpacker`, which inflates in
bounded steps and raises `UnpackedTooLarge` as soon as the output passes its limit
(SCRAPE_BODY_SIZE_LIMIT, or what is left of it):

- `UnpackedSizeMeter` counts a body while it streams in and throws the output away, so the proxy
  refuses an oversized page with constant memory, before anything downstream unpacks it;
- `unpack` keeps the output (the replica merge needs the text), never more than the limit;
- `Unpacker.pieces` hands the output over step by step (reading a page's first lines only).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

STEP_BYTES = 256 * 1024  # inflate at most this much at a time
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_IDENTITY = {"", "identity"}
_GZIP = {"gzip", "x-gzip"}


class UnpackedTooLarge(Exception):
    """The page unpacks to more than the limit."""


class UnreadableEncoding(Exception):
    """The page uses a content coding we cannot measure, or its gzip stream is corrupt."""


def is_gzip(content_encoding: str | None) -> bool:
    return (content_encoding or "").strip().lower() in _GZIP


class Unpacker:
    """Inflates the chunks of one body in steps of at most `step` bytes, counting the output; it
    raises `UnpackedTooLarge` as soon as the total passes `limit`."""

    def __init__(self, content_encoding: str | None, limit: int, step: int = STEP_BYTES) -> None:
        encoding = (content_encoding or "").strip().lower()
        if encoding not in _IDENTITY | _GZIP:
            raise UnreadableEncoding(f"content coding {encoding!r} is not supported")
        self._gzip = encoding in _GZIP
        self._inflater = zlib.decompressobj(_GZIP_WBITS)
        self._limit = limit
        self._step = step
        self.size = 0

    def pieces(self, chunk: bytes) -> Iterator[bytes]:
        """The unpacked output of `chunk`, in pieces of at most `step` bytes (an identity chunk
        is handed over whole)."""
        if not self._gzip:
            self._count(len(chunk))
            yield chunk
            return
        pending = chunk
        while pending:
            try:
                piece = self._inflater.decompress(pending, self._step)
            except zlib.error as exc:
                raise UnreadableEncoding(f"corrupt gzip data ({exc})") from None
            self._count(len(piece))
            yield piece
            pending = self._inflater.unconsumed_tail
            if self._inflater.eof:
                # Another gzip member may follow (Go's reader, like Prometheus', reads them all).
                pending = self._inflater.unused_data + pending
                self._inflater = zlib.decompressobj(_GZIP_WBITS)

    def _count(self, size: int) -> None:
        self.size += size
        if self.size > self._limit:
            raise UnpackedTooLarge(self.size)


class UnpackedSizeMeter:
    """Feed it the raw chunks of one body; it raises as soon as the unpacked size passes `limit`."""

    def __init__(self, content_encoding: str | None, limit: int) -> None:
        self._unpacker = Unpacker(content_encoding, limit)

    @property
    def size(self) -> int:
        return self._unpacker.size

    def feed(self, chunk: bytes) -> None:
        for _ in self._unpacker.pieces(chunk):
            pass


def unpack(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The identity-encoded body (gunzipped when it came gzipped), at most `limit` bytes of it:
    more raises `UnpackedTooLarge` having held at most `limit` plus one step."""
    return b"".join(Unpacker(content_encoding, limit).pieces(body))
