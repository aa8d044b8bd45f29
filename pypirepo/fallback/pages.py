"""Upstream project pages as last seen: kept in the database, refreshed after a TTL.

One upstream call per project at a time: a per-project lock is held across the fetch, and
whoever waited on it takes the answer the first one got (the page, or its failure)
instead of asking again. A page the upstream could not give us is served stale (logged
once per project and outage) rather than failing; a "not found" is an answer and is
remembered like a page. Waiting on the upstream (on the lock or the fetch) takes one of
the process's wait slots (background.WaitSlots): without a free one, what is held is
served, else UpstreamBusy.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import queue
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..metadata.upstream import FOUND, NOT_FOUND, UpstreamCache
from ..records import format_time, utcnow
from .background import Lull, WaitSlots, drain, running
from ..upstream.client import UpstreamBusy, UpstreamClient, UpstreamNotFound, UpstreamUnavailable

log = logging.getLogger(__name__)


class FetchDenied(Exception):
    """Nothing is cached for the project and the caller may not ask the upstream."""


@dataclass
class Listing:
    project: str
    status: str  # found | not_found
    files: list[dict]
    fetched: dt.datetime
    etag: str | None
    stale: bool = False
    problem: str | None = None  # why it is stale, for the log and the response
    by_name: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.by_name = {f["filename"]: f for f in self.files}

    @property
    def found(self) -> bool:
        return self.status == FOUND

    @property
    def token(self) -> str:
        """Changes whenever the listing does; keys the rendered pages built from it."""
        return f"{self.status}:{self.etag}:{self.fetched.isoformat()}:{len(self.files)}"


class KeyedLocks:
    """A lock per key, dropped again when nobody holds or waits for it."""

    def __init__(self):
        self._locks: dict = {}
        self._guard = threading.Lock()

    @contextmanager
    def hold(self, key):
        with self._guard:
            entry = self._locks.get(key)
            if entry is None:
                entry = self._locks[key] = [threading.Lock(), 0]
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._locks[key]


class UpstreamPages:
    def __init__(self, client: UpstreamClient, engine, config, repository_id: int,
                 memory: int = 2048, lull: Lull | None = None, serials=None,
                 slots: WaitSlots | None = None, stats=None):
        self.client = client
        self.stats = stats  # fallback.stats.UpstreamCounter: how the upstream answered
        self.slots = slots or WaitSlots(answered=lambda: client.last_answer)
        self.engine = engine
        self.repository_id = repository_id  # the proxy repository whose rows these are
        self.serials = serials  # pypirepo.db.serials.Serials: the cheap "is a page kept?" read
        self.writer = PageWriter(engine, lull)
        self.config = config
        self.locks = KeyedLocks()
        # Listings recently read or fetched by this process: the hot path of a warm
        # cache skips the database while the listing is within its TTL.
        self._memory: OrderedDict[str, tuple[float, Listing]] = OrderedDict()
        self._memory_size = memory
        self._memory_lock = threading.Lock()
        self._refreshed: dict[str, tuple[float, Listing]] = {}
        self._failed: dict[str, tuple[float, UpstreamUnavailable]] = {}

    def _ttl(self, status: str) -> float:
        return self.config.ttl if status == FOUND else self.config.not_found_ttl

    def _remember(self, listing: Listing) -> Listing:
        if listing.stale:
            return listing
        age = (utcnow() - listing.fetched).total_seconds()
        expires = time.monotonic() + max(0.0, self._ttl(listing.status) - age)
        with self._memory_lock:
            self._memory[listing.project] = (expires, listing)
            self._memory.move_to_end(listing.project)
            while len(self._memory) > self._memory_size:
                self._memory.popitem(last=False)
        return listing

    def _recalled(self, project: str) -> Listing | None:
        with self._memory_lock:
            hit = self._memory.get(project)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        return None

    def _load(self, project: str) -> tuple[Listing | None, bool]:
        """(listing from the database, whether it is still fresh)."""
        if self.serials is not None and \
                not self.serials.has_upstream_page(self.repository_id, project):
            row = None
        else:
            with self.engine.connect() as conn:
                row = UpstreamCache(conn).page(self.repository_id, project)
        listing = None
        same_upstream = True
        if row is not None:
            listing = Listing(project, row.status, list(row.files or []), row.fetched,
                              row.etag)
            same_upstream = row.upstream == self.client.base_url
        # What this process fetched last may not be written yet (PageWriter).
        # A stale one too while there is no row yet: it is all we hold (with the upstream
        # down, the next request would otherwise find nothing and answer 502).
        mine = self._refreshed.get(project)
        if mine is not None and (listing is None or not mine[1].stale and (
                not same_upstream or mine[1].fetched >= listing.fetched)):
            listing, same_upstream = mine[1], True
        if listing is None:
            return None, False
        age = (utcnow() - listing.fetched).total_seconds()
        fresh = same_upstream and 0 <= age < self._ttl(listing.status)
        return listing, fresh

    def get(self, project: str, may_fetch: bool, accept_stale: bool = False) -> Listing:
        """The project's upstream listing, fetched when stale and the caller may fetch.

        accept_stale: any listing we hold will do (a download looking for one file).
        Raises FetchDenied, or UpstreamUnavailable when nothing is held and the upstream
        cannot be asked (UpstreamBusy: every wait slot is taken).
        """
        recalled = self._recalled(project)
        if recalled is not None:
            return recalled
        if not may_fetch:
            listing, fresh = self._load(project)
            if listing is None:
                raise FetchDenied(project)
            return self._remember(listing) if fresh else listing  # stale will do here
        asked = time.monotonic()
        if not self.slots.take():
            listing, fresh = self._load(project)
            if listing is None:
                raise UpstreamBusy(self.slots.size)
            return self._remember(listing) if fresh else listing
        try:
            return self._fetched(project, accept_stale, asked)
        finally:
            self.slots.give()

    def _fetched(self, project: str, accept_stale: bool, asked: float) -> Listing:
        with self.locks.hold(project):
            # Whoever held the lock before us has just asked the upstream: take that
            # answer (even with a TTL of zero) instead of asking again.
            done = self._refreshed.get(project)
            if done is not None and done[0] >= asked:
                return done[1]
            failed = self._failed.get(project)
            if failed is not None and failed[0] >= asked:
                raise type(failed[1])(str(failed[1]), failed[1].key)
            recalled = self._recalled(project)
            if recalled is not None:
                return recalled
            listing, fresh = self._load(project)
            if listing is not None and (fresh or accept_stale):
                return self._remember(listing) if fresh else listing
            try:
                listing = self._refresh(project, listing)
            except UpstreamUnavailable as exc:
                with self._memory_lock:
                    self._failed[project] = (time.monotonic(), exc)
                    if len(self._failed) > self._memory_size:
                        self._failed.pop(next(iter(self._failed)))
                raise
            with self._memory_lock:
                self._failed.pop(project, None)
                self._refreshed[project] = (time.monotonic(), listing)
                if len(self._refreshed) > self._memory_size:
                    self._refreshed.pop(next(iter(self._refreshed)))
            return listing

    def _refresh(self, project: str, held: Listing | None) -> Listing:
        etag = held.etag if held is not None and held.status == FOUND else None
        started = time.monotonic()
        health = self.client.health
        try:
            page = self.client.fetch_page(project, etag)
        except UpstreamNotFound:
            health.recovered(project)
            if self.stats is not None:
                self.stats.miss()
            return self._remember(self._save(project, NOT_FOUND, None, []))
        except UpstreamUnavailable as exc:
            if self.stats is not None:
                self.stats.error(str(exc))
            if held is None:
                raise
            # Once per project and outage, not once per request.
            health.report(project, exc, "serving the stale upstream page (fetched "
                          f"{held.fetched.isoformat()})")
            return dataclasses.replace(held, stale=True, problem=str(exc))
        health.recovered(project)
        if self.stats is not None:
            self.stats.hit()
        log.debug("fetched upstream page of %s in %.3fs", project, time.monotonic() - started)
        if page.not_modified and held is not None:
            return self._remember(self._touch(project, held, page.etag))
        files = _first_seen(page.files or [], held)
        return self._remember(self._save(project, FOUND, page.etag, files))

    def _save(self, project, status, etag, files) -> Listing:
        now, upstream, repository = utcnow(), self.client.base_url, self.repository_id
        self.writer.submit(lambda cache: cache.save_page(repository, project, upstream, status,
                                                         etag, now, files))
        return Listing(project, status, files, now, etag)

    def _touch(self, project: str, held: Listing, etag: str | None) -> Listing:
        now = utcnow()
        etag = etag or held.etag
        repository = self.repository_id
        self.writer.submit(lambda cache: cache.touch_page(repository, project, now, etag))
        return Listing(project, held.status, held.files, now, etag)

    def flush(self, timeout: float = 30.0) -> None:
        self.writer.flush(timeout)


class PageWriter:
    """Writes pages to the database from one thread, many to a transaction.

    The request that fetched a page answers from memory at once; the row is for restarts
    and other processes, which can wait until a burst of requests is answered (a lull, a
    second at most). One writer also spares SQLite's single write lock thirty requests
    queueing on it after a burst of fetches.
    """

    def __init__(self, engine, lull: Lull | None = None):
        self.engine = engine
        self.lull = lull
        self.queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # Started now: the first page of a burst would start it while the burst's other
        # requests wait on the lock for it.
        self._ensure_thread()

    def submit(self, op) -> None:
        self.queue.put(op)
        thread = self._thread
        if thread is None or not thread.is_alive():
            self._ensure_thread()

    def _ensure_thread(self) -> None:
        with self._lock:
            self._thread = running(self._thread, self._loop, "upstream page writer")

    def flush(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def _loop(self) -> None:
        while True:
            batch = [self.queue.get()]
            if self.lull is not None:
                self.lull.wait()
            batch += drain(self.queue)
            try:
                with self.engine.begin() as conn:
                    cache = UpstreamCache(conn)
                    for op in batch:
                        op(cache)
            except Exception:  # noqa: BLE001 - a lost row only costs a refetch later
                log.exception("could not save %d upstream page(s)", len(batch))
            finally:
                for _ in batch:
                    self.queue.task_done()


def _first_seen(files: list[dict], held: Listing | None) -> list[dict]:
    """Remember when each file first appeared: the cooldown's clock when the upstream
    gives no upload time (PEP 503 pages never do)."""
    before = held.by_name if held is not None else {}
    now = format_time(utcnow())
    for f in files:
        old = before.get(f["filename"])
        f["first_seen"] = (old or {}).get("first_seen") or now
    return files
