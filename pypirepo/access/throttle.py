"""Failed logins, counted per account and per client address: after too many within a
window, further attempts are refused (429) without a password being checked.

Used by Access.identify, so it covers the login form and Basic auth (clients sending a
wrong password) alike. Decisions, and why:

- A sliding window: an account or address is refused while it has `failures` failures
  younger than `window`; each failure frees its slot when it turns `window` old, so an
  attacker gets at most `failures` guesses per window, however they spread them. Refused
  attempts are not counted (the block ends on time for the person behind it).
- A success resets nothing: an attacker who also holds a valid account (or waits for the
  real user to log in) must not earn more guesses by it; and one account's success never
  touches another's count.
- The same wrong password again counts once: a client configured with an old password
  (pip, uv, a CI job) retries it on every request, and must not lock out the account or
  everyone behind its address. Guessing needs different passwords, and each counts.
- API tokens count per address only: a token can't be guessed, and counting every bad
  token against `__token__` (or its owner) would let anyone lock out every publisher.
- IPv6 addresses count per /64: one host commonly holds a whole /64.
- Memory is bounded: at most `entries` accounts and as many addresses are remembered,
  each with at most its limit of failures (16 bytes each): about 15 MB at worst with
  the defaults. When full, entries older than the window go
  first, then the least recently failed ones (an attacker must fail that many times to
  push a count out, and their own address's count stops them first).
- Per process: each server process (or instance behind a load balancer) counts on its
  own. waitress serves from one process, so that is one count per instance; with N
  instances an attacker gets at most N times the limit.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import secrets
import threading
import time
from array import array
from collections import OrderedDict

from ..errors import Refused
from ..settings import ConfigError, as_duration, as_int


class Throttled(Refused):
    """Too many failed logins: 429, with Retry-After (seconds, rounded up)."""

    def __init__(self, retry_after: float, what: str):
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(429, f"Too many failed logins for {what}; try again in "
                              f"{self.retry_after} seconds.")

    @property
    def headers(self) -> dict:
        return {"Retry-After": str(self.retry_after)}


class _Failures:
    """One key's recent failures, oldest first: when (monotonic) and a digest of the
    credentials, in two compact arrays (16 bytes a failure)."""

    __slots__ = ("times", "digests")

    def __init__(self):
        self.times = array("d")
        self.digests = array("Q")

    def __len__(self):
        return len(self.times)


class _Counts:
    """key -> its _Failures; least recently failed keys first."""

    def __init__(self, limit: int, window: float, maxsize: int):
        self.limit, self.window, self.maxsize = limit, window, maxsize
        self.items: OrderedDict[str, _Failures] = OrderedDict()

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until key may try again; 0: it may now."""
        failures = self.items.get(key)
        if failures is None or len(failures) < self.limit:
            return 0.0
        return max(0.0, failures.times[-self.limit] + self.window - now)

    def fail(self, key: str, digest: int, now: float) -> None:
        failures = self.items.get(key)
        if failures is None:
            self._make_room(now)
            failures = self.items[key] = _Failures()
        else:
            self.items.move_to_end(key)
        times, digests = failures.times, failures.digests
        fresh = now - self.window
        stale = 0
        while stale < len(times) and times[stale] <= fresh:
            stale += 1
        extra = len(times) + 1 - self.limit
        if digest in digests[stale:]:
            return  # the same wrong password again: counted once
        drop = max(stale, extra)
        if drop:
            del times[:drop], digests[:drop]
        times.append(now)
        digests.append(digest)

    def _make_room(self, now: float) -> None:
        if len(self.items) < self.maxsize:
            return
        fresh = now - self.window
        for key in [k for k, f in self.items.items() if not f.times or f.times[-1] <= fresh]:
            del self.items[key]
        while len(self.items) >= self.maxsize:
            self.items.popitem(last=False)

    def __len__(self):
        return len(self.items)


class LoginThrottle:
    """Counts failed logins; `check` before a password is verified, `failed` after a
    wrong one. Thread-safe; the common case (nothing failed lately) is two dict lookups."""

    def __init__(self, failures: int = 10, address_failures: int = 30,
                 window: float = 300.0, entries: int = 10000, clock=time.monotonic):
        self.enabled = failures > 0 and window > 0
        self.accounts = _Counts(failures, window, entries)
        self.addresses = _Counts(address_failures or failures, window, entries)
        self.clock = clock
        self._lock = threading.Lock()
        self._salt = secrets.token_bytes(16)

    @classmethod
    def from_settings(cls, s) -> LoginThrottle:
        failures = s.get_value("auth.throttle_failures", as_int, 10)
        address_failures = s.get_value("auth.throttle_address_failures", as_int, 30)
        window = s.get_value("auth.throttle_window", as_duration, 300.0)
        entries = s.get_value("auth.throttle_entries", as_int, 10000)
        for key, value in (("auth.throttle_failures", failures),
                           ("auth.throttle_address_failures", address_failures)):
            if value < 0:
                raise ConfigError(key, "expected 0 (no throttling) or more failures")
        if entries < 1:
            raise ConfigError("auth.throttle_entries", "expected 1 or more")
        return cls(failures, address_failures, window, entries)

    def check(self, account: str | None, address: str | None) -> None:
        """Raise Throttled when the account or the address may not try now."""
        if not self.enabled:
            return
        accounts, addresses = self.accounts.items, self.addresses.items
        key = address_key(address) if addresses else None
        if (account is None or account not in accounts) and key not in addresses:
            return  # nothing failed lately (the common case: no lock taken)
        with self._lock:
            now = self.clock()
            if account is not None:
                wait = self.accounts.retry_after(account, now)
                if wait:
                    raise Throttled(wait, "this account")
            if key is not None:
                wait = self.addresses.retry_after(key, now)
                if wait:
                    raise Throttled(wait, "this address")

    def allows(self, account: str | None, address: str | None) -> bool:
        """check() as a yes or no: for a path that must leave the refusal to another (a
        cached credential answered in front of the router must not be, while throttled:
        a guesser would learn the right password from a 200)."""
        try:
            self.check(account, address)
        except Throttled:
            return False
        return True

    def failed(self, account: str | None, address: str | None, secret: str) -> None:
        """A wrong password (or token) for account (None: count the address only)."""
        if not self.enabled:
            return
        digest = int.from_bytes(hashlib.blake2b(
            f"{account}\0{secret}".encode(), digest_size=8, key=self._salt).digest(), "big")
        with self._lock:
            now = self.clock()
            if account is not None:
                self.accounts.fail(account, digest, now)
            key = address_key(address)
            if key is not None:
                self.addresses.fail(key, digest, now)


def address_key(address: str | None) -> str | None:
    """The client's address as counted: IPv4 as is, IPv6 by its /64."""
    if not address:
        return None
    if ":" not in address:
        return address
    try:
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    except ValueError:
        return address[:64]
