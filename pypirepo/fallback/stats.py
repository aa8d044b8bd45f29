"""How a proxy repository's upstream answered: hits (it had the page or file asked for),
misses (it has no such project or file) and errors (it could not be asked, or what it
sent was refused), with the last error's time and message.

Counted where the fallback asks the upstream (pages.UpstreamPages._refresh,
fetcher.FileFetcher._run), never on a request answered from the cache. Each process
keeps its counts in memory and adds them to the repository's upstream_stats row at most
once every `interval` seconds, in one statement from a timer thread, so that several
instances sharing the database sum up and no request waits on a write. What a process
has not written yet is shown by it (pending()) until it is written, and written when the
repository closes or the process ends.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref

from ..metadata.stats import RepositoryStats, UpstreamFigures
from ..records import utcnow

log = logging.getLogger(__name__)

INTERVAL = 5.0
MAX_MESSAGE = 1000  # the last error's message, as kept


class UpstreamCounter:
    def __init__(self, engine, repository_id: int, interval: float = INTERVAL):
        self.engine = engine
        self.repository_id = repository_id
        self.interval = interval
        self._lock = threading.Lock()
        self._pending = UpstreamFigures()
        self._timer: threading.Timer | None = None
        # A server stopping writes what it counted since the last write.
        atexit.register(_flush_at_exit, weakref.ref(self))

    def hit(self) -> None:
        self._add(UpstreamFigures(hits=1))

    def miss(self) -> None:
        self._add(UpstreamFigures(misses=1))

    def error(self, message: str) -> None:
        self._add(UpstreamFigures(errors=1, last_error=str(message)[:MAX_MESSAGE],
                                  last_error_at=utcnow().replace(microsecond=0)))

    def _add(self, counts: UpstreamFigures) -> None:
        with self._lock:
            self._pending = self._pending.plus(counts)
            if self._timer is None:
                # The first count since the last write: written `interval` from now,
                # with whatever else comes in meanwhile.
                self._timer = threading.Timer(self.interval, self.flush)
                self._timer.daemon = True
                self._timer.name = "upstream stats writer"
                self._timer.start()

    def pending(self) -> UpstreamFigures:
        """This process's counts not written yet."""
        with self._lock:
            return self._pending

    def flush(self) -> None:
        with self._lock:
            counts, self._pending = self._pending, UpstreamFigures()
            timer, self._timer = self._timer, None
        if timer is not None and timer is not threading.current_thread():
            timer.cancel()
        if counts == UpstreamFigures():
            return
        try:
            with self.engine.begin() as conn:
                RepositoryStats(conn).add_upstream(self.repository_id, counts)
        except Exception:  # noqa: BLE001 - figures for a page: kept for the next try
            log.exception("could not write the upstream statistics of repository %s",
                          self.repository_id)
            self._add(counts)

    close = flush


def _flush_at_exit(ref) -> None:
    counter = ref()
    if counter is not None:
        counter.flush()
