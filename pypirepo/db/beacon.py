"""A change counter in shared memory beside a SQLite database.

Every index request must see the last committed change, also one made by another process
on the same database. Asking the database costs little in itself, but the driver lets go
of the GIL around the query, and with waitress' threads waiting for it each request pays
a GIL hand-off or two: a third of a cached page's throughput. A SQLite database is a
local file, so every process that shares it runs on this host and can share memory too:
writers bump a counter in a small mapped file after each commit, and readers compare it
with the value they saw when they last asked the database, a read of memory that no
syscall and no lock is needed for. Only when it moved do they ask again.

The counter only ever grows (writers increment it under a file lock), so "unchanged"
can't be a coincidence. A writer that dies between its commit and its bump would leave
the change unseen, so a reader also asks the database again once its answer is older than
`RECHECK` seconds.

PostgreSQL servers are shared by instances on other hosts, which this can't reach; there
the freshness query stays.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import weakref

from sqlalchemy.engine import Engine, make_url

_COUNTER = struct.Struct("<Q")
SUFFIX = "-pypirepo-serial"
RECHECK = 1.0  # seconds: the longest a change committed without a bump can stay unseen

_beacons: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class Beacon:
    def __init__(self, path: str):
        self.path = path
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            with _locked(fd):
                if os.fstat(fd).st_size < _COUNTER.size:
                    os.ftruncate(fd, _COUNTER.size)  # zero-filled: the counter starts at 0
            self._map = mmap.mmap(fd, _COUNTER.size)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        # Engines come and go (tests make hundreds): the descriptor goes with its beacon.
        self._finalizer = weakref.finalize(self, os.close, fd)

    def close(self) -> None:
        self._map.close()
        self._finalizer()

    def read(self) -> int:
        return _COUNTER.unpack_from(self._map)[0]

    def bump(self) -> int:
        """Called after a commit: every reader of the database will ask it again."""
        with _locked(self._fd):
            value = _COUNTER.unpack_from(self._map)[0] + 1
            _COUNTER.pack_into(self._map, 0, value)
        return value



class _locked:
    def __init__(self, fd: int):
        self.fd = fd

    def __enter__(self):
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)


def attach(engine: Engine) -> Beacon | None:
    """The engine's beacon, made on first use; None where one can't serve (PostgreSQL, or
    a SQLite database in memory, which no other process can open)."""
    if engine in _beacons:
        return _beacons[engine]
    beacon = None
    url = make_url(str(engine.url))
    database = url.database
    if (url.get_backend_name() == "sqlite" and database and database != ":memory:"
            and not database.startswith("file:")):
        beacon = Beacon(os.path.abspath(database) + SUFFIX)
    _beacons[engine] = beacon
    return beacon



def detach(engine: Engine) -> None:
    """Close the engine's beacon, if it has one (the engine is being disposed of)."""
    beacon = _beacons.pop(engine, None)
    if beacon is not None:
        beacon.close()


CHANGED = "pypirepo.changed"  # session.info key: this transaction bumped the serial


def announce_commits(factory, engine: Engine) -> None:
    """Bump the engine's beacon after each commit of factory's sessions that changed the
    index (MetadataCache.bump_serial marks them). After, not before: a reader that saw
    the new count before the commit landed would keep the old answer under it."""
    from sqlalchemy import event

    beacon = attach(engine)
    if beacon is None:
        return

    @event.listens_for(factory, "after_commit")
    def _bump(session):
        if session.info.pop(CHANGED, False):
            beacon.bump()

    @event.listens_for(factory, "after_rollback")
    def _forget(session):
        session.info.pop(CHANGED, None)
