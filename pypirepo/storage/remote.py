"""What the object-store backends (s3, gcs, azure) share.

Each backend keeps its SDK calls in its own module; this one holds the pieces that have
nothing to do with any SDK: key rules, the prefix, reading a stream in parts, a readable
stream over fetched chunks, a shared connection pool, and the common settings.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import BinaryIO

import requests
from requests.adapters import HTTPAdapter

from ..interfaces import Storage, check_key  # noqa: F401 - check_key is re-exported
from ..settings import ConfigError, as_bool, as_duration, as_int, as_size, as_str

MiB = 1024 * 1024
# How many small objects read_many fetches at once: requests to a remote store are
# latency-bound, so many in flight is what makes a rebuild of 100,000 records fast.
DEFAULT_PARALLELISM = 32


def parse_prefix(text: str) -> str:
    """'' or 'some/path/': objects of this index live under it, so a bucket can be shared."""
    text = text.strip().strip("/")
    if not text:
        return ""
    check_key(text)
    return text + "/"


def read_full(stream: BinaryIO, size: int) -> bytes:
    """Up to size bytes; fewer only at the end of the stream (read() may return less)."""
    first = stream.read(size)
    if len(first) == size or not first:
        return first
    buf = bytearray(first)
    while len(buf) < size:
        chunk = stream.read(size - len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


class ChunkStream(io.RawIOBase):
    """A readable binary stream over an iterator of byte chunks.

    Holds at most one chunk, so reading a large object costs one chunk of memory; errors
    raised while fetching pass through `translate` so callers see only our exceptions.
    Callers wrap it in io.BufferedReader, which only calls readinto and readall, so
    those two are all it implements.
    """

    def __init__(self, chunks: Iterator[bytes], translate: Callable[[BaseException], BaseException]
                 | None = None, on_close: Callable[[], None] | None = None):
        self._chunks = chunks
        self._translate = translate
        self._on_close = on_close
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def _next(self) -> bool:
        try:
            chunk = next(self._chunks)
        except StopIteration:
            return False
        except Exception as exc:
            if self._translate is None:
                raise
            raise self._translate(exc) from exc
        self._buf = memoryview(chunk)
        return True

    def readinto(self, target) -> int:
        while not self._buf:
            if not self._next():
                return 0
        n = min(len(target), len(self._buf))
        target[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def readall(self) -> bytes:
        parts = [bytes(self._buf)]
        self._buf = memoryview(b"")
        while self._next():
            parts.append(bytes(self._buf))
            self._buf = memoryview(b"")
        return b"".join(parts)

    def close(self) -> None:
        if not self.closed:
            self._buf = memoryview(b"")
            if self._on_close is not None:
                self._on_close()
        super().close()


def ranged_chunks(fetch: Callable[[int, int], bytes], start: int, stop: int,
                  chunk_size: int) -> Iterator[bytes]:
    """fetch(first, last_inclusive) over [start, stop), one bounded request at a time."""
    pos = start
    while pos < stop:
        end = min(pos + chunk_size, stop)
        data = fetch(pos, end - 1)
        if not data:
            return
        yield data
        pos += len(data)


def pooled(session: requests.Session, parallelism: int) -> requests.Session:
    """The session, mounted with one connection pool that every thread shares.

    read_many runs `parallelism` requests at once, and requests' default pool of 10 would
    drop connections; the 8 over are for the uploads and listings running beside it.
    """
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=parallelism + 8)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class RemoteStorage(Storage):
    """Settings every object-store backend reads the same way."""

    parallelism = DEFAULT_PARALLELISM
    # A rebuild reads records from the snapshot where the listed etag still matches:
    # one GET instead of one per file.
    snapshot_rebuild = True
    #: part / block / chunk size for streamed uploads and downloads: memory per transfer
    part_size = 8 * MiB

    @staticmethod
    def _parallelism(settings) -> int:
        # Read before the backend sizes its connection pools from it.
        parallelism = settings.get_value("storage.parallelism", as_int, DEFAULT_PARALLELISM)
        if parallelism < 1:
            raise ConfigError("storage.parallelism", "must be at least 1")
        return parallelism

    def _common_settings(self, settings, parallelism: int) -> None:
        self.parallelism = parallelism
        if settings.get_value("storage.redirect", as_bool, False):
            self.redirect_expires = settings.get_value("storage.redirect_expires", as_duration,
                                                       900.0)
            if not 60 <= self.redirect_expires <= 7 * 86400:
                # S3 and GCS refuse signatures that live longer than a week.
                raise ConfigError("storage.redirect_expires", "must be between 1m and 7d")
        else:
            self.redirect_expires = None

    @staticmethod
    def _part_size(settings, key: str, default: int, minimum: int, multiple: int = 1) -> int:
        size = settings.get_value(key, as_size, default)
        if size < minimum or size % multiple:
            raise ConfigError(key, f"must be at least {minimum} bytes and a multiple of "
                                   f"{multiple}")
        return size

    @staticmethod
    def _optional(settings, key: str) -> str | None:
        return settings.get_value(key, as_str, None) or None
