"""The fallback's threads: fetch workers, and the lull its write-behind work waits for.

Every thread of a server process shares one GIL. A client like uv sends its requests in
bursts (every page of a resolver round at once, then every .metadata, then every wheel),
and it waits for the slowest answer of a burst. Two things keep the fallback's own work
from stretching those bursts:

- Workers: a fetch is handed to an idle thread with a queue put. Starting a thread instead
  waits until the new thread has run, a GIL hand-over that the .metadata response starting
  a prefetch used to wait for.
- Lull: storing a verified file (its metadata, three storage writes, a database batch),
  writing a fetched .metadata, saving upstream pages and prefetching wheels nobody asked
  for yet are work a client does not wait for. It waits until the process is nearly idle
  (never longer than `max_delay`), then does everything that piled up in one batch.
- gather(): storing waits longer, until no new file has come in for a moment. While a
  client's install goes on its downloads keep arriving, and once they stop the client
  unpacks them: storing is CPU and disk work (metadata-heavy file system calls above
  all) that would compete with that, on a developer's machine where both run, and with
  the next client's burst on a server. Until stored, a file is served from its spool file.
- WaitSlots: how many request threads may wait on the upstream at once. A request that
  would wait beyond them is answered (503, or what is held) as soon as the upstream has
  gone quiet, so a stalled upstream can never take every thread from what this server
  holds itself, while a burst on an upstream that answers only queues for a moment.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

log = logging.getLogger(__name__)


class Workers:
    """Daemon threads, started when no worker is idle and kept a while for the next job.

    Daemon, so that stopping the server never waits for a long download to finish. `keep`
    of them are started at once and never leave: the first burst on a new server (uv
    asking for 30 wheels at once) then hands most jobs over with a queue put, where a
    thread start would wait for the new thread to get the GIL from the busy others.
    """

    def __init__(self, name: str, idle_timeout: float = 60.0, keep: int = 0):
        self.name = name
        self.idle_timeout = idle_timeout
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        # One token per worker waiting for a job; a submit takes one or starts a worker.
        self._idle = threading.Semaphore(0)
        for _ in range(keep):
            self._idle.release()
            threading.Thread(target=self._work, args=(True,), daemon=True,
                             name=name).start()

    def submit(self, fn, *args) -> None:
        self._jobs.put((fn, args))
        if not self._idle.acquire(blocking=False):
            threading.Thread(target=self._work, daemon=True, name=self.name).start()

    def _work(self, kept: bool = False) -> None:
        while True:
            try:
                fn, args = self._jobs.get(timeout=self.idle_timeout)
            except queue.Empty:
                if kept:
                    continue  # still idle, its token still out
                if self._idle.acquire(blocking=False):
                    return  # this worker's token taken back: no submit counts on it
                continue  # a submit took the token: its job is on the way
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - a worker must outlive a failed job
                log.exception("%s: a job failed", self.name)
            self._idle.release()


class Lull:
    """Waits until this process has been mostly idle for a moment.

    "Mostly idle" is measured, not guessed from requests: the process's CPU time over a
    short window. Requests waiting for the upstream cost no CPU (write-behind work may use
    that time), a burst being answered keeps the GIL busy (it waits).
    """

    def __init__(self, window: float = 0.01, busy: float = 0.5, max_delay: float = 1.0):
        self.window = window
        self.busy = busy  # share of one core above which the process counts as busy
        self.max_delay = max_delay

    def wait(self) -> None:
        deadline = time.monotonic() + self.max_delay
        while True:
            cpu, started = time.process_time(), time.monotonic()
            time.sleep(self.window)
            now = time.monotonic()
            if (time.process_time() - cpu) < self.busy * (now - started) or now >= deadline:
                return


def gather(jobs: queue.Queue, first, settle: float, max_delay: float,
           hurry: threading.Event) -> list:
    """`first` and every job that follows it until none has come for `settle` seconds,
    `max_delay` has passed since the first, or `hurry` is set (a flush)."""
    batch = [first]
    started = last = time.monotonic()
    while not hurry.is_set():
        now = time.monotonic()
        if now - last >= settle or now - started >= max_delay:
            break
        try:
            batch.append(jobs.get(timeout=min(0.05, settle)))
            last = time.monotonic()
        except queue.Empty:
            pass
    return batch


def running(thread: threading.Thread | None, target, name: str) -> threading.Thread:
    """The thread, or a new daemon one started when there is none (or it died)."""
    if thread is None or not thread.is_alive():
        thread = threading.Thread(target=target, daemon=True, name=name)
        thread.start()
    return thread


def drain(q: queue.Queue) -> list:
    """Everything waiting in the queue now, without blocking."""
    items = []
    while True:
        try:
            items.append(q.get_nowait())
        except queue.Empty:
            return items


# Used when the server does not say how many threads it has (pypirepo.server does).
DEFAULT_MAX_WAITING = 6
BUSY_LOG_EVERY = 60.0
# A request that finds every slot taken waits for one while the upstream is answering (a
# burst of first requests: slots come free within moments), never longer than
# MAX_QUEUE; once the upstream has sent nothing for QUIET seconds it is answered at once.
QUIET = 1.0
MAX_QUEUE = 5.0
_STEP = 0.1


def max_waiting_for(threads: int) -> int:
    """Slots for a server of `threads` request threads: a quarter of them, and at least
    two, stay for what is held here (private and cached pages, downloads, health)."""
    return max(1, threads - max(2, threads // 4))


class WaitSlots:
    """How many request threads may wait on the upstream at once.

    `answered()` is when the upstream last sent anything (UpstreamClient.last_answer).
    Set once at start-up (configure), before the first request."""

    def __init__(self, size: int = DEFAULT_MAX_WAITING, answered=None):
        self.configure(size)
        self.answered = answered or (lambda: float("-inf"))
        self._clients: list = []
        self._taken = float("-inf")
        self._logged = -BUSY_LOG_EVERY

    def configure(self, size: int) -> None:
        self.size = size
        self._sem = threading.BoundedSemaphore(size)

    def answered_by(self, client) -> None:
        """Count this upstream client's answers too: the proxies of a server share one set
        of slots, and any upstream answering means waiting is not in vain."""
        self._clients.append(client)
        clients = self._clients
        self.answered = lambda: max(c.last_answer for c in clients)

    def take(self, wait: bool = True) -> bool:
        """A slot, or False: every one is taken, and the upstream has gone quiet (or
        `wait` is False)."""
        if self._sem.acquire(blocking=False):
            self._taken = time.monotonic()
            return True
        now = time.monotonic()
        end = now + MAX_QUEUE
        # Quiet since the last answer, or since the last request began waiting (a first
        # burst has had no answer yet).
        while wait and now < end and now - max(self.answered(), self._taken) < QUIET:
            if self._sem.acquire(timeout=_STEP):
                self._taken = time.monotonic()
                return True
            now = time.monotonic()
        if now - self._logged >= BUSY_LOG_EVERY:  # once a minute at most, not per request
            self._logged = now
            log.warning("all %d request threads that may wait on the upstream are waiting "
                        "on it (pypi.upstream_max_waiting): requests that need the upstream "
                        "get 503 (or what is held here) until one is free", self.size)
        return False

    def give(self) -> None:
        self._sem.release()
