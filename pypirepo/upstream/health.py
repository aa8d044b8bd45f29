"""The upstream's health: a circuit breaker per upstream host, and logging that does not
repeat itself.

After a connection failure, a 5xx or a 429, a host is "down" for `pypi.upstream_down_for`
seconds (longer when it sent Retry-After): every call meanwhile fails at once, without a
connection, so stale pages and cached files are served without waiting on it, and an
upstream that asked us to slow down is not asked again and again. Once the time is up,
one call is let through as a probe; its success closes the breaker, its failure opens it
again. Meanwhile every other call still fails at once.

A failure is logged (WARNING) once per project and state, not per request: the first
502, 503 or stale page of a project in an outage says why, the hundred after it stay
quiet, and the project's recovery is noted once.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import OrderedDict

from .network import origin_text

log = logging.getLogger(__name__)

MAX_WAIT = 600.0  # the longest Retry-After we honour, so a bad header can't stop us for days
REMEMBERED_PROJECTS = 10000


def _stamp(wall: float | None) -> str | None:
    if wall is None:
        return None
    return dt.datetime.fromtimestamp(wall, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Breaker:
    """One upstream host's state. `admit()` is on every call: one attribute read while up."""

    def __init__(self, origin: tuple[str, str, int], down_for: float):
        self.origin = origin
        self.name = origin_text(origin)
        self.down_for = down_for
        self.down = False
        self.outage = 0  # counts outages: a project's log line is once per outage
        self.since: float | None = None  # wall clock, for /_health
        self.until = 0.0  # monotonic: when the next probe may go
        self.probing = False
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self._lock = threading.Lock()

    def admit(self) -> bool:
        """True when this call is the probe; raises Down while the host is down."""
        if not self.down:
            return False
        with self._lock:
            if not self.down:
                return False
            if self.probing or time.monotonic() < self.until:
                raise Down(self)
            self.probing = True
            return True

    def succeeded(self, probe: bool) -> None:
        if not self.down and not probe:
            return
        with self._lock:
            self.probing = False
            if self.down:
                self.down = False
                log.warning("the upstream %s answers again (it was down since %s)",
                            self.name, _stamp(self.since))

    def failed(self, message: str, probe: bool, wait: float | None = None) -> int:
        """Open the breaker (again) for down_for, or `wait` (Retry-After) if longer;
        returns the outage's number."""
        wait = max(self.down_for, min(wait or 0.0, MAX_WAIT))
        with self._lock:
            if probe:
                self.probing = False
            self.last_error, self.last_error_at = message, time.time()
            if self.down_for <= 0 and not wait:
                return self.outage
            self.until = max(self.until, time.monotonic() + wait)
            if not self.down:
                self.down = True
                self.outage += 1
                self.since = time.time()
                log.warning("the upstream %s is down: %s; for %.0fs every request is answered "
                            "from what is cached, without asking it", self.name, message, wait)
            return self.outage

    def state(self) -> dict:
        with self._lock:
            out = {"url": self.name, "state": "down" if self.down else "up"}
            if self.down:
                out["down_since"] = _stamp(self.since)
                left = self.until - time.monotonic()
                out["next_try"] = _stamp(time.time() + max(0.0, left))
            if self.last_error is not None:
                out["last_error"] = self.last_error
                out["last_error_at"] = _stamp(self.last_error_at)
            return out


class Down(Exception):
    """Raised by Breaker.admit; the client turns it into UpstreamUnavailable."""

    def __init__(self, breaker: Breaker):
        super().__init__(breaker.name)
        self.breaker = breaker


class Health:
    """The breakers of every upstream host, and the per-project problem log."""

    def __init__(self, down_for: float):
        self.down_for = down_for
        self._breakers: dict[tuple, Breaker] = {}
        self._lock = threading.Lock()
        self._problems: OrderedDict[str, str] = OrderedDict()

    def breaker(self, origin: tuple[str, str, int]) -> Breaker:
        b = self._breakers.get(origin)
        if b is None:
            with self._lock:
                b = self._breakers.setdefault(origin, Breaker(origin, self.down_for))
        return b

    def state(self, index_origin: tuple[str, str, int]) -> dict:
        """For /_health: the index host's state, and any other host that is down."""
        out = self.breaker(index_origin).state()
        others = [b.state() for o, b in list(self._breakers.items())
                  if o != index_origin and b.down]
        if others:
            out["other_hosts_down"] = others
        return out

    # --- one log line per project and state --------------------------------------------------

    def report(self, project: str, error, doing: str) -> None:
        """Log an upstream failure that a client meets (a 502, a 503, a stale page) unless
        this project met the same state already."""
        key = getattr(error, "key", None) or str(error)
        with self._lock:
            if self._problems.get(project) == key:
                return
            self._problems[project] = key
            self._problems.move_to_end(project)
            while len(self._problems) > REMEMBERED_PROJECTS:
                self._problems.popitem(last=False)
        log.warning("%s: %s, because %s", project, doing, error)

    def recovered(self, project: str) -> None:
        if project not in self._problems:  # the usual case: no lock
            return
        with self._lock:
            gone = self._problems.pop(project, None)
        if gone is not None:
            log.info("%s: the upstream answers again", project)
