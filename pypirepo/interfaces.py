"""The contracts between the layers.

Views talk to the index service; the service talks to a Storage, the metadata cache
(pypirepo.metadata) and, for fallback, an Upstream. Each backend turns its SDK's errors into
the exceptions below at its own module boundary, so nothing above it imports an SDK.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO


class StorageError(Exception):
    """The storage backend failed (network, permissions, ...)."""


class ObjectNotFound(StorageError):
    """No object under that key."""


class InvalidKey(StorageError):
    """A key that would escape the storage root or is otherwise unusable."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: dt.datetime | None = None
    # A version token that changes whenever the object is rewritten (listings fill it).
    etag: str | None = None


def check_key(key: str) -> str:
    """The key rules every backend enforces: relative, '/'-separated, no empty, '.' or
    '..' segment, no backslash or NUL. With them no key can leave its root or prefix."""
    if (
        not key
        or key[0] == "/"
        or "\\" in key
        or "\x00" in key
        or "//" in key
        or key.endswith("/")
        or any(p in (".", "..") for p in key.split("/"))
    ):
        raise InvalidKey(f"invalid storage key {key!r}")
    return key


class Storage(abc.ABC):
    """Where files live: the source of truth the metadata cache is rebuilt from.

    Keys are '/'-separated relative paths. Writes are atomic: a reader sees the old object,
    the whole new one, or none, never part of one, and a failed write leaves nothing.
    """

    #: the short alias that selects the backend in `pypirepo.storage`
    alias: str = ""
    #: how many small objects read_many fetches at once; remote stores want more
    parallelism: int = 8
    #: whether a rebuild lists etags and reads unchanged records from the records snapshot;
    #: off where listing with per-object details costs more than reading the records
    #: themselves (local files: a stat() each)
    snapshot_rebuild: bool = False
    #: seconds a signed download URL stays valid when downloads answer with a redirect to
    #: the store (`storage.redirect = true`); None streams every download through the app
    redirect_expires: float | None = None

    @classmethod
    @abc.abstractmethod
    def from_settings(cls, settings) -> Storage:
        """Build from pypirepo.settings.Settings; raise ConfigError naming a bad key."""

    @abc.abstractmethod
    def put(self, key: str, stream: BinaryIO, size: int | None = None) -> ObjectInfo:
        """Store the stream under key, atomically, replacing any object there."""

    @abc.abstractmethod
    def open(self, key: str, start: int = 0, stop: int | None = None) -> BinaryIO:
        """A readable stream of bytes [start, stop) of the object. Caller closes it."""

    @abc.abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """Size and modification time; ObjectNotFound when absent."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with prefix, in no particular order."""

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Only the keys under prefix; backends that can skip per-object details do."""
        return (obj.key for obj in self.list(prefix))

    def clear_interrupted_writes(self, min_age: float) -> tuple[int, int]:
        """Remove what writes interrupted by a crash left outside any key (a local
        temporary file), once older than min_age seconds: (removed, left as too recent).
        Object stores show nothing: an unfinished multipart upload is invisible, and the
        store's own lifecycle rule removes it."""
        return 0, 0

    def signed_url(self, key: str, expires: int, filename: str | None = None) -> str | None:
        """A self-authorizing URL for a direct download, or None when unsupported."""
        return None

    def copy(self, src_key: str, dst_key: str) -> ObjectInfo:
        """Store a copy of the object at src_key under dst_key, atomically like put(),
        replacing any object there; ObjectNotFound when src_key is missing.

        Backends copy inside the store (a server-side copy, a hard link), never through
        this process; this default, for a backend that cannot, streams the object
        through in bounded chunks.
        """
        check_key(src_key)
        if check_key(dst_key) == src_key:
            return self.stat(src_key)  # a copy onto itself changes nothing
        with self.open(src_key) as stream:
            return self.put(dst_key, stream)

    # Conveniences built on the primitives; backends may do them better.

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        import io

        return self.put(key, io.BytesIO(data), len(data))

    def read_bytes(self, key: str) -> bytes:
        with self.open(key) as stream:
            return stream.read()

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except ObjectNotFound:
            return False
        return True

    def read_many(self, keys: Iterable[str]) -> Iterator[tuple[str, bytes | None]]:
        """(key, bytes) for each key, None where it vanished; in parallel on remote stores."""
        keys = list(keys)
        if len(keys) < 4 or self.parallelism <= 1:
            # Not a backend's _read_one: its cheaper request only pays off over many keys,
            # and read_bytes tells failures apart more exactly (a GCS 404 can be the bucket's).
            for key in keys:
                yield key, Storage._read_one(self, key)
            return
        prefix = f"{self.alias}-read" if self.alias else ""  # s3-read, ... in thread dumps
        with ThreadPoolExecutor(self.parallelism, thread_name_prefix=prefix) as pool:
            yield from zip(keys, pool.map(self._read_one, keys))

    def copy_many(self, pairs: Iterable[tuple[str, str]]) -> list[ObjectInfo]:
        """copy() of each (src_key, dst_key), in parallel on remote stores (a copy there is
        a round trip of waiting); the first failure is raised once the copies in flight
        are done, and the ones not started yet are dropped."""
        return self._copy_all(list(pairs), self.copy)

    def _copy_all(self, pairs: list[tuple[str, str]], copy) -> list[ObjectInfo]:
        """copy(src_key, dst_key) of each pair, as copy_many describes."""
        for src_key, dst_key in pairs:  # nothing is copied when a key is bad
            check_key(src_key), check_key(dst_key)
        if len(pairs) < 2 or self.parallelism <= 1:
            return [copy(src, dst) for src, dst in pairs]
        prefix = f"{self.alias}-copy" if self.alias else ""
        with ThreadPoolExecutor(min(self.parallelism, len(pairs)),
                                thread_name_prefix=prefix) as pool:
            futures = [pool.submit(copy, src, dst) for src, dst in pairs]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def _read_one(self, key: str) -> bytes | None:
        """One object for read_many's pool, None where it vanished. Backends override it
        with a cheaper request and come back here for anything but a plain answer."""
        try:
            return self.read_bytes(key)
        except ObjectNotFound:
            return None

    def close(self) -> None:
        """Release clients and pools."""


# --- what the registry holds ---------------------------------------------------------------
# Each subsystem's includeme registers its services under these (registry.registerUtility)
# and the rest find them there (registry.getUtility), instead of attributes hung on the
# registry: one name per service, and a missing one fails loudly.

from zope.interface import Interface  # noqa: E402 - markers only, after the contracts


class ISettings(Interface):
    """pypirepo.settings.Settings: the ini overlaid by PYPIREPO_* variables."""


class IAppConfig(Interface):
    """pypirepo.settings.AppConfig: the core settings, parsed."""


class IStorage(Interface):
    """The Storage backend."""


class IDatabase(Interface):
    """pypirepo.db.Database: engine, sessions, serials."""


class IAccess(Interface):
    """The access backend: who may do what (pypirepo.access)."""


class IRepositories(Interface):
    """pypirepo.repositories.Repositories: every repository, by name."""


class IRenderer(Interface):
    """A callable (template name, data) -> str: the Jinja2 templates."""


class IStaticAssets(Interface):
    """The web UI's static files (pypirepo.views.ui.assets)."""


class IBodyGate(Interface):
    """security.BodyGate: what a request's headers alone decide, before its body."""


class IUIPages(Interface):
    """The web UI's page data (pypirepo.pages.ui.UIPages)."""


class ISessions(Interface):
    """pypirepo.access.session.Sessions: browser sessions, CSRF, the proxy's user header."""
