"""First downloads of upstream files: one fetch per file, streamed to every waiting client.

A fetch runs on a worker thread, independent of any client: it writes the upstream's bytes
to a spool file while hashing them, and every client asking for that file meanwhile
(the first one too) reads the spool file as it grows. Memory stays flat whatever the
size, and a client that goes away does not break the fetch for the others.

The last byte is held back from every client until the whole file is in and its sha256
equals the one the upstream's index advertised; on a mismatch the clients' streams end
short of their length (no installer accepts a short file) and nothing is stored. Only a
verified file is put into storage (atomically, by the storage contract), and only then is
its row added, so storage never holds a partial or unverified upstream file.

A file is taken only as the upstream's page describes it: a Content-Length other than the
advertised size is refused before a byte is read, the body is broken off at the first
byte past the advertised size or `pypi.upstream_max_file_size`, and the name and version
in its metadata must be the ones in its filename (as for an upload). Those verdicts are
remembered for a minute, like a hash mismatch. A wheel's sidecar is its own METADATA once
the wheel is here; a sidecar fetched before (verified against its advertised hash) that
differs from it is replaced.

Storing, writing a fetched .metadata and prefetching are write-behind work: they wait for
a lull (pypirepo.fallback.background), so a client's burst of requests is answered first.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import logging
import os
import queue
import tempfile
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from .. import distinfo, names, records
from ..metadata import MetadataCache
from ..records import FileRecord, format_time, parse_time, utcnow
from ..upload import metadata_disagrees
from .background import Lull, Workers, drain, gather, running
from ..upstream.client import (
    UpstreamClient,
    UpstreamError,
    UpstreamNotFound,
    UpstreamUnavailable,
)

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
# Storing waits until no verified file has come in for STORE_SETTLE seconds (see
# background.gather), STORE_MAX_DELAY at most.
STORE_SETTLE = 0.5
STORE_MAX_DELAY = 5.0
RUNNING, VERIFIED, FAILED = "running", "verified", "failed"
MISMATCH_MEMORY = 60.0
SPOOL_PREFIX = "pypirepo-fetch-"
# Fetch threads kept waiting for work from the start (upstream.background.Workers).
KEPT_WORKERS = 8
# A client's download that has had nothing new to send for this long is waiting on the
# upstream (FlightReader).
BLOCKED = 1.0


class Refused(UpstreamError):
    """The upstream's file is not what its page says it is: not stored, not served."""


class HashMismatch(Refused):
    pass


class Occupied(Exception):
    """Another repository holds a file under the storage key a fetched file would take."""


@dataclass
class StorePlace:
    """Where a proxy repository keeps what it fetches: its row in the database, its
    storage prefix, its upstream's address (the files' provenance), and whether a key is
    free (a proxy that shares its prefix with a hosted repository must never overwrite an
    upload there)."""

    repository_id: int = 2
    repository: str = "pypi"
    prefix: str = records.PREFIX
    upstream: str = ""
    may_store: Callable[[str, str], bool] = lambda project, filename: True


class Flight:
    """One upstream file being fetched into a spool file."""

    def __init__(self, project: str, entry: dict, spool_dir: str):
        self.project = project
        self.entry = entry
        self.filename = entry["filename"]
        fd, self.path = tempfile.mkstemp(prefix=SPOOL_PREFIX, dir=spool_dir)
        # Held until the spool file is removed: a process that starts later and finds
        # the file unlocked knows its owner died (sweep_orphans).
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._owner_fd: int | None = fd
        self.cond = threading.Condition()
        self.started = threading.Event()
        self.written = 0
        self.size: int | None = entry.get("size")
        self.state = RUNNING
        self.error: UpstreamError | None = None
        self.sha256: str | None = None
        self.md5: str | None = None
        self.blake2_256: str | None = None
        self.core: bytes | None = None  # a wheel's METADATA, read once it is verified
        self.info: dict = {}

    def wait_started(self, timeout: float) -> None:
        """Block until the upstream answered (or failed); raises its error."""
        if not self.started.wait(timeout):
            raise UpstreamUnavailable(f"the upstream index did not start sending "
                                      f"{self.filename} within {timeout:.0f}s")
        if self.state == FAILED:
            raise self.error or UpstreamUnavailable(f"fetching {self.filename} failed")

    def wait_verdict(self, timeout: float | None) -> bool:
        """Block until the file is in and checked, up to timeout (None: however long the
        fetch's own limits let it take): True when verified, False when still running;
        raises the failure."""
        with self.cond:
            self.cond.wait_for(lambda: self.state != RUNNING, timeout)
            state = self.state
        if state == FAILED:
            raise self.error or UpstreamUnavailable(f"fetching {self.filename} failed")
        return state == VERIFIED

    def reader(self, report=None) -> FlightReader:
        # Opened now, while the spool file certainly exists: it may be unlinked as soon as
        # the fetch is stored, and an open descriptor keeps reading it.
        return FlightReader(self, os.open(self.path, os.O_RDONLY), report)

    def _progress(self, n: int) -> None:
        with self.cond:
            self.written += n
            self.cond.notify_all()

    def release(self) -> None:
        """After the spool file is gone: let go of the owner's lock."""
        fd, self._owner_fd = self._owner_fd, None
        if fd is not None:
            os.close(fd)

    def _finish(self, state: str, error: UpstreamError | None = None) -> None:
        with self.cond:
            self.state, self.error = state, error
            self.cond.notify_all()
        self.started.set()


class FlightReader:
    """A WSGI app_iter over a flight's spool file: follows the writer, ends on its verdict.

    It never raises: a fetch that fails while a client is being sent the file ends that
    body short of its Content-Length (the server then closes the connection, and no
    installer takes a short file), and `report` logs why, once per project and state,
    instead of a traceback per client.

    While bytes keep coming its thread is busy sending them, like any download's. Blocked
    for BLOCKED seconds on an upstream that sends nothing, it is waiting on the upstream,
    and takes one of the wait slots (hold()) to go on waiting; with none free, it breaks
    off, so that a stalled upstream cannot hold every request thread.
    """

    def __init__(self, flight: Flight, fd: int, report=None, poll: float = 30.0):
        self.flight, self.fd, self.poll = flight, fd, poll
        self.report = report
        self.pos = 0
        self.slots = None
        self._holding = False

    def hold(self, slots) -> None:
        """Take over the caller's wait slot: given back once bytes flow (or the verdict
        is in), taken again when blocked."""
        self.slots, self._holding = slots, True

    def _give(self, done: bool) -> None:
        if self._holding:
            self._holding = False
            self.slots.give()
        if done:
            self.slots = None

    def __iter__(self):
        flight = self.flight
        while True:
            stalled = False
            with flight.cond:
                blocked = None
                while True:
                    state, written = flight.state, flight.written
                    # Everything but the last byte may go before the verdict.
                    limit = written if state == VERIFIED else written - 1
                    if state == FAILED or limit > self.pos or state == VERIFIED:
                        break
                    if self.slots is None or self._holding:
                        flight.cond.wait(self.poll)
                        continue
                    now = time.monotonic()
                    if blocked is None:
                        blocked = now
                    elif now - blocked >= BLOCKED:
                        if not self.slots.take(wait=False):
                            stalled = True
                            break
                        self._holding = True
                        continue
                    flight.cond.wait(BLOCKED)
            if self.slots is not None:
                self._give(done=state != RUNNING)
            if stalled:
                self._broken(UpstreamUnavailable(
                    f"the upstream index sent nothing of {flight.filename} for {BLOCKED:.0f}s "
                    "while every request thread that may wait on it was waiting "
                    "(pypi.upstream_max_waiting); this download was broken off"))
                return
            if state == FAILED:
                self._broken(flight.error or UpstreamUnavailable("upstream fetch failed"))
                return
            if self.pos >= limit:
                return
            data = os.pread(self.fd, min(CHUNK, limit - self.pos), self.pos)
            if not data:
                self._broken(UpstreamUnavailable(
                    f"the spool file of {flight.filename} ended early"))
                return
            self.pos += len(data)
            yield data

    def _broken(self, error: UpstreamError) -> None:
        if self.report is not None:
            self.report(self.flight, error)

    def close(self) -> None:
        if self.slots is not None:
            self._give(done=True)
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class FileFetcher:
    def __init__(self, client: UpstreamClient, storage, session_factory, spool_dir: str,
                 lull: Lull | None = None, max_file_size: int = 1024**3,
                 place: StorePlace | None = None, stats=None):
        self.client = client
        self.stats = stats  # fallback.stats.UpstreamCounter: how the upstream answered
        self.max_file_size = max_file_size
        self.storage = storage
        self.session_factory = session_factory
        self.spool_dir = spool_dir
        self.place = place or StorePlace()
        self.lull = lull
        self._workers = Workers("upstream fetch", keep=KEPT_WORKERS)
        self._flights: dict[tuple[str, str], Flight] = {}
        self._lock = threading.Lock()
        # Files that just failed their hash check: clients retry (pip does, five times),
        # and asking the upstream again within a minute would only get the same bytes.
        self._stored: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._store_queue: queue.Queue = queue.Queue()
        self._storer: threading.Thread | None = None
        self._hurry = threading.Event()  # flush(): store what is queued now
        # .metadata files fetched for a client and not written to storage yet (the storer
        # writes them after the burst): served from here meanwhile.
        self._sidecars: dict[str, bytes] = {}
        # Sidecars this process wrote: key -> (sha256, whether it is a stored wheel's own
        # METADATA, which nothing fetched later may replace).
        self._sidecars_written: OrderedDict[str, tuple[str, bool]] = OrderedDict()
        # Prefetches wait for a lull, so that they do not compete with the requests that
        # asked for them; the files wanted meanwhile are started at once by join().
        self._prefetch_queue: queue.Queue = queue.Queue()
        self._prefetcher: threading.Thread | None = None
        self._prefetching: set[tuple[str, str]] = set()
        self._mismatched: dict[tuple[str, str], tuple[float, HashMismatch]] = {}
        os.makedirs(spool_dir, exist_ok=True)
        sweep_orphans(spool_dir)
        # Started now, not by the first file of a burst: that one would start them while
        # holding the lock every other request of the burst waits for.
        self._storer = running(None, self._store_loop, "upstream file storer")
        self._prefetcher = running(None, self._prefetch_loop, "upstream prefetcher")
        # Verified files wait to be stored (gather()); a server stopping meanwhile stores
        # them first rather than leaving them to be fetched again and their spool files
        # behind.
        atexit.register(_store_at_exit, weakref.ref(self))

    def join(self, project: str, entry: dict) -> tuple[Flight | None, FlightReader | None]:
        """The running fetch of the file (started if needed) and a reader on it.

        (None, None) when a fetch of this process stored the file since the caller
        looked for its row: the caller then serves the stored file.
        """
        key = (project, entry["filename"])
        with self._lock:
            failed = self._mismatched.get(key)
            if failed is not None:
                if failed[0] > time.monotonic():
                    raise failed[1]
                del self._mismatched[key]
            flight = self._flights.get(key)
            if flight is None:
                if key in self._stored:
                    return None, None
                flight = self._start(key, entry)
            return flight, flight.reader(self._report)

    def _report(self, flight: Flight, error: UpstreamError) -> None:
        self.client.health.report(flight.project, error,
                                  f"cut a download of {flight.filename} short")

    def prefetch(self, project: str, entry: dict) -> bool:
        """Fetch a file nobody asked for yet, once the process is nearly idle; False when
        there is nothing to do."""
        key = (project, entry["filename"])
        with self._lock:
            if key in self._flights or key in self._stored or key in self._mismatched \
                    or key in self._prefetching:
                return False
            self._prefetching.add(key)
            self._prefetch_queue.put((key, entry))
            self._prefetcher = running(self._prefetcher, self._prefetch_loop,
                                        "upstream prefetcher")
            return True

    def _prefetch_loop(self) -> None:
        while True:
            batch = [self._prefetch_queue.get()]
            if self.lull is not None:
                self.lull.wait()
            batch += drain(self._prefetch_queue)
            for key, entry in batch:
                try:
                    with self._lock:
                        self._prefetching.discard(key)
                        if key in self._flights or key in self._stored \
                                or key in self._mismatched:
                            continue  # a client's download started it meanwhile
                        self._start(key, entry)
                except Exception:  # noqa: BLE001 - a prefetch is only a head start
                    log.exception("could not prefetch %s", key[1])
                finally:
                    self._prefetch_queue.task_done()

    # --- .metadata files -------------------------------------------------------------------

    def sidecar(self, key: str) -> bytes | None:
        """A .metadata file fetched by this process and not yet written to storage."""
        return self._sidecars.get(key)

    def keep_sidecar(self, key: str, data: bytes) -> None:
        """Serve it from memory now, write it to storage after the burst."""
        with self._lock:
            written = self._sidecars_written.get(key)
            if written is not None and written[1]:
                return  # the stored wheel's own METADATA is there already
            self._sidecars[key] = data
            self._store_queue.put(_Sidecar(key, data))
            self._storer = running(self._storer, self._store_loop, "upstream file storer")

    def _start(self, key: tuple[str, str], entry: dict) -> Flight:
        flight = Flight(key[0], entry, self.spool_dir)
        self._flights[key] = flight
        self._workers.submit(self._run, flight)
        return flight

    # --- the fetch thread ------------------------------------------------------------------

    def _run(self, flight: Flight) -> None:
        try:
            self._download(flight)
        except Exception:  # noqa: BLE001 - a fetch thread must never die silently
            log.exception("fetching %s from upstream failed", flight.filename)
            if flight.state == RUNNING:
                flight._finish(FAILED, UpstreamUnavailable(
                    f"fetching {flight.filename} from the upstream index failed"))
        flight.started.set()
        self._count(flight)
        if flight.state == VERIFIED:
            # Stored by one thread, one file after the other: the clients have their bytes
            # already, and concurrent stores would only fight over the GIL and the
            # database's write lock with the requests being served.
            with self._lock:
                self._store_queue.put(flight)
                self._storer = running(self._storer, self._store_loop, "upstream file storer")
        else:
            self._land(flight, stored=False)

    def _count(self, flight: Flight) -> None:
        if self.stats is None:
            return
        if flight.state == VERIFIED:
            self.stats.hit()
        elif isinstance(flight.error, UpstreamNotFound):
            self.stats.miss()
        else:
            self.stats.error(str(flight.error))

    def _store_loop(self) -> None:
        while True:
            # Clients have their bytes; storing waits until their installs are over.
            batch = gather(self._store_queue, self._store_queue.get(), STORE_SETTLE,
                           STORE_MAX_DELAY, self._hurry)
            if self.lull is not None and not self._hurry.is_set():
                self.lull.wait()
            batch += drain(self._store_queue)
            sidecars = [item for item in batch if isinstance(item, _Sidecar)]
            batch = [item for item in batch if not isinstance(item, _Sidecar)]
            for item in sidecars:
                try:
                    with self._lock:  # replaced meanwhile by the wheel's own METADATA
                        superseded = self._sidecars.get(item.key) is not item.data
                    if not superseded:
                        self.storage.put_bytes(item.key, item.data)
                        self._wrote_sidecar(item.key, hashlib.sha256(item.data).hexdigest(),
                                            False)
                except Exception:  # noqa: BLE001 - the next request fetches it again
                    log.exception("storing %s fetched from upstream failed", item.key)
                finally:
                    with self._lock:
                        if self._sidecars.get(item.key) is item.data:
                            del self._sidecars[item.key]
                    self._store_queue.task_done()
            if not batch:
                continue
            put: list[tuple[Flight, FileRecord]] = []
            try:
                for flight in batch:
                    try:
                        put.append((flight, self._put(flight)))
                    except Occupied as exc:
                        log.warning("%s", exc)
                    except Exception:  # noqa: BLE001 - the next request fetches it again
                        log.exception("storing %s fetched from upstream failed",
                                      flight.filename)
                self._record([record for _, record in put])
            except Exception:  # noqa: BLE001
                log.exception("recording %d file(s) fetched from upstream failed", len(put))
                put = []
            finally:
                kept = {id(f) for f, _ in put}
                for flight in batch:
                    self._land(flight, id(flight) in kept)
                    self._store_queue.task_done()

    def _wrote_sidecar(self, key: str, digest: str, own: bool) -> None:
        with self._lock:
            self._sidecars_written[key] = (digest, own)
            self._sidecars_written.move_to_end(key)
            while len(self._sidecars_written) > 10000:
                self._sidecars_written.popitem(last=False)

    def _sidecar_digest(self, key: str) -> str | None:
        """The sha256 of the sidecar this process holds or wrote for `key`, if any."""
        with self._lock:
            data = self._sidecars.get(key)
            written = self._sidecars_written.get(key)
        if data is not None:
            return hashlib.sha256(data).hexdigest()
        return written[0] if written is not None else None

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every verified fetch is stored (tests and benchmarks), storing
        without waiting for the clients to be done."""
        deadline = time.monotonic() + timeout
        self._hurry.set()
        try:
            while (self._prefetch_queue.unfinished_tasks or self._store_queue.unfinished_tasks
                   or self._flights) and time.monotonic() < deadline:
                time.sleep(0.005)
        finally:
            self._hurry.clear()

    def _land(self, flight: Flight, stored: bool) -> None:
        key = (flight.project, flight.filename)
        with self._lock:
            # Recorded before the flight goes, so that a request that missed the row a
            # moment ago finds one or the other.
            if stored:
                self._stored[key] = None
                while len(self._stored) > 10000:
                    self._stored.popitem(last=False)
            self._flights.pop(key, None)
        try:
            os.unlink(flight.path)
        except FileNotFoundError:
            pass
        flight.release()

    def _download(self, flight: Flight) -> None:
        entry, filename = flight.entry, flight.filename
        started = time.monotonic()
        advertised, cap = entry.get("size"), self.max_file_size
        if advertised is not None and advertised > cap:
            return self._refuse(flight, Refused(
                f"the upstream file {filename} is {advertised} bytes, more than "
                f"pypi.upstream_max_file_size allows ({cap} bytes); it was not fetched"))
        try:
            response = self.client.open_file(entry["url"])
        except UpstreamError as exc:
            flight._finish(FAILED, exc)
            return
        sha256, md5 = hashlib.sha256(), hashlib.md5()
        blake = hashlib.blake2b(digest_size=32)
        try:
            length = response.headers.get("Content-Length", "")
            if length.isdigit():
                if advertised is not None and int(length) != advertised:
                    raise Refused(f"the upstream index sent {filename} with a Content-Length "
                                  f"of {length} bytes, but its page says {advertised}; it was "
                                  "not fetched")
                if int(length) > cap:
                    raise Refused(f"the upstream file {filename} is {length} bytes, more than "
                                  f"pypi.upstream_max_file_size allows ({cap} bytes); it was "
                                  "not fetched")
                flight.size = int(length)
            limit, why = (advertised, "its page advertises") if advertised is not None \
                else (cap, "pypi.upstream_max_file_size allows")
            flight.started.set()
            with open(flight.path, "wb", buffering=0) as out:
                for chunk in self.client.read_file(response, limit, why, CHUNK):
                    out.write(chunk)
                    sha256.update(chunk)
                    md5.update(chunk)
                    blake.update(chunk)
                    flight._progress(len(chunk))
        except Refused as exc:
            return self._refuse(flight, exc)
        except UpstreamError as exc:
            if exc.key == "too large":  # the same bytes would come again
                return self._refuse(flight, exc)
            flight._finish(FAILED, exc)
            return
        finally:
            response.close()
        flight.sha256 = sha256.hexdigest()
        flight.md5, flight.blake2_256 = md5.hexdigest(), blake.hexdigest()
        if flight.size is not None and flight.written != flight.size:
            flight._finish(FAILED, UpstreamUnavailable(
                f"the upstream index sent {flight.written} of {flight.size} bytes of "
                f"{filename}"))
            return
        if flight.sha256 != entry["sha256"]:
            return self._refuse(flight, HashMismatch(
                f"the upstream file {filename} does not match the sha256 its index "
                f"advertises ({entry['sha256']}); it was not stored"),
                f"hash mismatch for upstream file {filename}: the index says sha256 "
                f"{entry['sha256']}, the file has {flight.sha256}; not stored, not served")
        try:
            flight.core, flight.info = _inspect(flight.path, filename)
        except Refused as exc:
            return self._refuse(flight, exc)
        flight.size = flight.written
        log.info("fetched %s from upstream (%d bytes) in %.2fs", filename,
                 flight.written, time.monotonic() - started)
        flight._finish(VERIFIED)

    def _refuse(self, flight: Flight, error: UpstreamError, said: str | None = None) -> None:
        """A verdict on the upstream's file that asking again would not change: said once,
        remembered for a minute, nothing stored."""
        log.error("%s", said or f"upstream file {flight.filename} refused, not stored, not "
                                f"served: {error}")
        with self._lock:
            self._mismatched[(flight.project, flight.filename)] = (
                time.monotonic() + MISMATCH_MEMORY, error)
        flight._finish(FAILED, error)

    def _put(self, flight: Flight) -> FileRecord:
        """Put the verified file into storage; returns its record for the database."""
        entry, project, filename = flight.entry, flight.project, flight.filename
        place = self.place
        if not place.may_store(project, filename):
            raise Occupied(f"{filename} is held by another repository under the same storage "
                           "key; served, not stored")
        dist = names.parse_filename(filename)
        core, info = flight.core, flight.info
        sidecar = records.metadata_key(project, filename, place.prefix)
        advertised = entry.get("core_metadata")
        if core is not None:
            metadata_sha256 = hashlib.sha256(core).hexdigest()
            known = self._sidecar_digest(sidecar)
            if known != metadata_sha256:
                if known is not None:
                    log.warning("upstream .metadata of %s differs from the wheel's own METADATA; "
                                "replaced by the wheel's", filename)
                with self._lock:  # a fetched one still queued must not be written after
                    self._sidecars.pop(sidecar, None)
                self.storage.put_bytes(sidecar, core)
            self._wrote_sidecar(sidecar, metadata_sha256, True)
        else:
            metadata_sha256 = advertised if isinstance(advertised, str) else None
        upload_time = entry.get("upload_time")
        record = FileRecord(
            project=project,
            display_name=info.get("name") or project,
            filename=filename,
            version=dist.version,
            canonical_version=names.canonical_version(dist.version),
            packagetype=dist.packagetype,
            python_version=dist.python_version,
            size=flight.written,
            sha256=flight.sha256,
            md5=flight.md5,
            blake2_256=flight.blake2_256,
            upload_time=parse_time(upload_time) if upload_time else utcnow(),
            requires_python=entry.get("requires_python") or info.get("requires_python"),
            metadata_sha256=metadata_sha256,
            yanked=bool(entry.get("yanked")),
            yanked_reason=entry["yanked"] if isinstance(entry.get("yanked"), str) else None,
            origin="upstream",
            info=info,
            provenance={"upstream": place.upstream, "cached_at": format_time(utcnow())},
        )
        with open(flight.path, "rb") as src:
            self.storage.put(records.dist_key(project, filename, place.prefix), src,
                             record.size)
        self.storage.put_bytes(records.record_key(project, filename, place.prefix),
                               record.to_json())
        return record

    def _record(self, stored: list[FileRecord]) -> None:
        """Rows for files now in storage: a few statements for the whole batch."""
        if not stored:
            return
        with self.session_factory() as session:
            cache = MetadataCache(session)
            # bulk_add skips rows another process added first.
            cache.bulk_add(self.place.repository_id, stored)
            cache.record_events(self.place.repository, "cache", stored,
                                detail="fetched from upstream")
            session.commit()

    def fetch_metadata(self, entry: dict) -> bytes:
        """The PEP 658 sidecar of an upstream wheel, verified against its advertised hash
        (the caller asks only for one whose hash is advertised)."""
        url = entry["url"] + records.METADATA_SUFFIX
        response = self.client.open_file(url)
        try:
            data = b"".join(self.client.read_file(response, distinfo.MAX_METADATA,
                                                  "a METADATA file may have"))
        finally:
            response.close()
        advertised = entry.get("core_metadata")
        if not isinstance(advertised, str) or hashlib.sha256(data).hexdigest() != advertised:
            raise HashMismatch(f"the upstream {entry['filename']}.metadata does not match the "
                               f"sha256 its index advertises; it was not stored")
        return data


def _inspect(path: str, filename: str) -> tuple[bytes | None, dict]:
    """(a wheel's METADATA, the parsed metadata) of a verified file; raises Refused when
    the metadata names another project or version than the filename does."""
    dist = names.parse_filename(filename)
    core, info = _read_metadata(path, filename, dist)
    problem = metadata_disagrees(filename, info, dist.project, dist.version)
    if problem:
        raise Refused(f"the upstream file {filename} is not what its name says: {problem}")
    return core, info


def _read_metadata(path: str, filename: str, dist) -> tuple[bytes | None, dict]:
    try:
        if dist.packagetype == names.WHEEL:
            core = distinfo.wheel_metadata(path, filename)
            return core, distinfo.parse_metadata(core)
        raw = distinfo.sdist_metadata(path, filename)
        return None, distinfo.parse_metadata(raw) if raw else {}
    except (distinfo.InvalidDistribution, OSError, ValueError) as exc:
        log.warning("cannot read the metadata of upstream file %s: %s", filename, exc)
        return None, {}


@dataclass
class _Sidecar:
    key: str
    data: bytes


def _store_at_exit(ref, timeout: float = 10.0) -> None:
    fetcher = ref()
    if fetcher is None or not fetcher._store_queue.unfinished_tasks:
        return
    fetcher._hurry.set()
    deadline = time.monotonic() + timeout
    while fetcher._store_queue.unfinished_tasks and time.monotonic() < deadline:
        time.sleep(0.01)


def sweep_orphans(spool_dir: str, min_age: float = 60.0) -> int:
    """Remove spool files whose process died mid-fetch (a crash, a SIGKILL): a live owner
    holds a lock on each of its files, so an unlocked one older than `min_age` seconds
    (past the instant between creating a file and locking it) is nobody's. The spool
    folder may be shared by several servers, and the system's temporary folder by the
    whole machine: only our own prefix is looked at. Returns how many were removed."""
    removed = 0
    cutoff = time.time() - min_age
    try:
        entries = list(os.scandir(spool_dir))
    except OSError:
        return 0
    for entry in entries:
        if not entry.name.startswith(SPOOL_PREFIX):
            continue
        try:
            if not entry.is_file(follow_symlinks=False) or entry.stat().st_mtime > cutoff:
                continue
            fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # its owner is alive
        else:
            os.unlink(entry.path)
            removed += 1
        finally:
            os.close(fd)
    if removed:
        log.info("removed %d spool file(s) left by a server that stopped mid-fetch from %s",
                 removed, spool_dir)
    return removed
