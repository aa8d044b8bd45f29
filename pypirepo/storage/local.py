"""Files on the local filesystem (development, single host, or a shared NFS mount)."""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import secrets
import time
from pathlib import Path
from typing import BinaryIO

from ..interfaces import (
    InvalidKey,
    ObjectInfo,
    ObjectNotFound,
    Storage,
    StorageError,
    check_key,
)
from ..settings import ConfigError, as_bool, as_str

log = logging.getLogger(__name__)
_CHUNK = 1024 * 1024
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_SAFE_FOLDERS = 100_000
# Temporary files live beside their target (same filesystem, so os.replace is atomic) and
# carry this prefix, so listings skip them and a crash leaves nothing under a real name.
# The writer holds a lock on its temporary file until it is renamed into place, so one
# left unlocked was left by a process that died (clear_interrupted_writes).
_TMP_PREFIX = ".tmp-"


class LocalStorage(Storage):
    alias = "local"
    parallelism = 1  # local reads are cheaper than a thread hand-off

    def __init__(self, root: str | os.PathLike, fsync: bool = False):
        self.root = Path(root).resolve()
        self._root_str = str(self.root) + os.sep
        self.fsync = fsync
        self._safe_folders: set[str] = set()
        self.root.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_settings(cls, settings) -> LocalStorage:
        if settings.get_value("storage.redirect", as_bool, False):
            # Nothing could sign a URL for a file on our disk: downloads always stream.
            raise ConfigError("storage.redirect", "local storage cannot hand out download "
                              "URLs; leave it false (downloads stream through pypirepo)")
        root = settings.get_value("storage.dir", as_str)
        try:
            return cls(root, fsync=settings.get_value("storage.fsync", as_bool, False))
        except OSError as exc:
            raise ConfigError("storage.dir", f"cannot use {root!r}: {exc.strerror}") from None

    def path(self, key: str) -> Path:
        """The file of a key; the key rules alone keep it inside the root."""
        return Path(self._file(key))

    def _file(self, key: str) -> str:
        # A plain string: building Path objects is a visible share of reading 15,000 records.
        check_key(key)
        if _TMP_PREFIX in key and any(p.startswith(_TMP_PREFIX) for p in key.split("/")):
            raise InvalidKey(f"invalid storage key {key!r}")
        return self._root_str + key

    def _check_folder(self, folder: str, key: str) -> None:
        """Refuse to write through a symlink planted inside the root that leads out of it.

        Resolving costs a syscall per path component, a third of a small write, so each
        folder is resolved once per process. The guard is against links present before
        we write; whoever can swap a folder for a link at will can also do it between
        any check and the write.
        """
        if folder in self._safe_folders:
            return
        if not (os.path.realpath(folder) + os.sep).startswith(self._root_str):
            raise InvalidKey(f"storage key {key!r} escapes the storage root")
        if len(self._safe_folders) >= _MAX_SAFE_FOLDERS:
            self._safe_folders.clear()
        self._safe_folders.add(folder)

    def put(self, key: str, stream: BinaryIO, size: int | None = None) -> ObjectInfo:
        def fill(fd):
            while chunk := stream.read(_CHUNK):
                _write_all(fd, chunk)

        return self._write(key, fill)

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        return self._write(key, lambda fd: _write_all(fd, data))

    def _write(self, key: str, fill) -> ObjectInfo:
        """Write a temporary file beside the target and rename it into place."""
        path = self._file(key)
        folder = path[: path.rindex("/")]
        self._check_folder(folder, key)
        tmp = f"{folder}/{_TMP_PREFIX}{secrets.token_hex(8)}"
        try:
            try:
                fd = os.open(tmp, _CREATE, 0o644)
            except FileNotFoundError:
                # The folder is there for every write but a project's first: create it
                # only then, not with a mkdir walk on every write.
                os.makedirs(folder, exist_ok=True)
                fd = os.open(tmp, _CREATE, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot write {key!r}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # until renamed: a live write, not debris
            os.fchmod(fd, 0o644)  # readable by a web server beside us, whatever the umask
            fill(fd)
            if self.fsync:
                os.fsync(fd)
            st = os.fstat(fd)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        finally:
            os.close(fd)
        return ObjectInfo(key, st.st_size,
                          dt.datetime.fromtimestamp(st.st_mtime, dt.timezone.utc))

    def copy(self, src_key: str, dst_key: str) -> ObjectInfo:
        """A hard link to the source made beside the target and renamed into place.

        Sharing the inode is safe because no object is ever changed in place: put()
        always renames a new file over the old one, which leaves the other name alone.
        Where linking fails (another filesystem under the root, a filesystem without
        hard links, a link limit), the bytes are copied into a new file instead.
        """
        src = self._file(src_key)
        dst = self._file(dst_key)
        if src == dst:
            return self.stat(src_key)
        folder = dst[: dst.rindex("/")]
        self._check_folder(folder, dst_key)
        if not os.path.isfile(src):  # a folder is no object, and link() would refuse it
            raise ObjectNotFound(src_key)
        tmp = f"{folder}/{_TMP_PREFIX}{secrets.token_hex(8)}"
        try:
            try:
                _link(src, tmp)
            except FileNotFoundError:
                if not os.path.isfile(src):  # it vanished since
                    raise ObjectNotFound(src_key) from None
                os.makedirs(folder, exist_ok=True)  # the target's first object
                _link(src, tmp)
        except OSError:
            return super().copy(src_key, dst_key)  # streamed, in bounded chunks
        try:
            st = os.stat(tmp)
            os.replace(tmp, dst)
        except OSError as exc:
            _unlink(tmp)
            raise StorageError(f"cannot write {dst_key!r}: {exc}") from exc
        # rename() does nothing when both names are links to one file already (this copy
        # made before): the temporary name is then still there.
        _unlink(tmp)
        return ObjectInfo(dst_key, st.st_size,
                          dt.datetime.fromtimestamp(st.st_mtime, dt.timezone.utc))

    def open(self, key: str, start: int = 0, stop: int | None = None) -> BinaryIO:
        try:
            f = open(self._file(key), "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        if start:
            f.seek(start)
        if stop is None:
            return f
        return _Limited(f, stop - start)

    def stat(self, key: str) -> ObjectInfo:
        try:
            st = os.stat(self.path(key))
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        if not os.path.isfile(self.path(key)):
            raise ObjectNotFound(key)
        return ObjectInfo(key, st.st_size, dt.datetime.fromtimestamp(st.st_mtime, dt.timezone.utc))

    def delete(self, key: str) -> None:
        path = self.path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        # Drop empty project folders so listings stay small; racing writers recreate them.
        for parent in path.parents:
            if parent == self.root:
                break
            try:
                parent.rmdir()
            except OSError:
                break

    def list(self, prefix: str = ""):
        for key, entry in self._walk(prefix):
            st = entry.stat()
            # put() renames a fresh file into place, so the inode changes on every rewrite
            # even when the clock's granularity keeps mtime_ns the same.
            yield ObjectInfo(key, st.st_size,
                             dt.datetime.fromtimestamp(st.st_mtime, dt.timezone.utc),
                             f"{st.st_ino}-{st.st_mtime_ns}-{st.st_size}")

    def list_keys(self, prefix: str = ""):
        # The rebuild only needs names: no stat() per object.
        return (key for key, _entry in self._walk(prefix))

    def _walk(self, prefix: str):
        """(key, DirEntry) of every file under prefix, temporary files skipped.

        Walks only the folder the prefix names, then filters by the rest of the prefix.
        """
        base, _, _ = prefix.rpartition("/")
        stack = [self._root_str + base if base else str(self.root)]
        cut = len(self._root_str)
        while stack:
            folder = stack.pop()
            try:
                entries = os.scandir(folder)
            except (FileNotFoundError, NotADirectoryError):
                continue
            with entries:
                for entry in entries:
                    if entry.name.startswith(_TMP_PREFIX):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                        continue
                    key = entry.path[cut:]
                    if key.startswith(prefix):
                        yield key, entry

    def clear_interrupted_writes(self, min_age: float) -> tuple[int, int]:
        """Remove the temporary files of writes whose process died (a crash, a SIGKILL
        mid-upload): unlocked, and untouched for min_age seconds, since the folder may be
        shared with servers on other hosts, whose locks a network filesystem may not
        show. Returns (removed, left: unlocked but too recent to be sure)."""
        removed = left = 0
        cutoff = time.time() - min_age
        stack = [str(self.root)]
        while stack:
            folder = stack.pop()
            try:
                with os.scandir(folder) as entries:
                    found = list(entries)
            except (FileNotFoundError, NotADirectoryError):
                continue
            kept = len(found)
            for entry in found:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.name.startswith(_TMP_PREFIX):
                    verdict = _dead_temporary(entry, cutoff)
                    removed += verdict == "removed"
                    kept -= verdict == "removed"
                    left += verdict == "recent"
            if not kept and folder != str(self.root):
                _remove_empty(folder)  # a new project's folder, its first upload killed
        if removed:
            log.warning("removed %d temporary file(s) of interrupted writes from %s", removed,
                     self.root)
        return removed, left

    def read_bytes(self, key: str) -> bytes:
        try:
            with open(self._file(key), "rb") as f:
                return f.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(key) from None


class _Limited:
    """A file object that stops after n bytes (for ranged reads)."""

    def __init__(self, f, n):
        self._f, self._left = f, n

    def read(self, size=-1):
        if self._left <= 0:
            return b""
        if size is None or size < 0 or size > self._left:
            size = self._left
        data = self._f.read(size)
        self._left -= len(data)
        return data

    def close(self):
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _link(src: str, dst: str) -> None:
    # follow_symlinks: a symlinked object is copied as what a reader of it gets, not
    # as a link whose relative target would point elsewhere from another folder.
    os.link(src, dst, follow_symlinks=True)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _dead_temporary(entry, cutoff: float) -> str:
    """'removed', 'recent' (unlocked but young), or 'live' (locked by its writer)."""
    try:
        if not entry.is_file(follow_symlinks=False):
            return "live"
        fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return "live"
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return "live"
        if os.fstat(fd).st_mtime > cutoff:
            return "recent"
        os.unlink(entry.path)
        return "removed"
    except FileNotFoundError:
        return "live"  # renamed into place or removed meanwhile
    finally:
        os.close(fd)


def _remove_empty(folder: str) -> None:
    try:
        os.rmdir(folder)
    except OSError:
        pass


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
