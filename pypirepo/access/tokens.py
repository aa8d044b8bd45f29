"""API tokens: secrets a user makes for a tool, each narrowed to read or upload, to some
repositories and projects, until an expiry; revocable; shown once.

Tokens are made while the server runs, so they live in the database (api_tokens) whatever
`auth.backend` says; a token belongs to a user name and acts as that user, at most within
its scope (policy.may applies it). A token is sent as the password of Basic auth, with
the user name `__token__` (what twine, uv, poetry, pdm and hatch send) or its owner's.

A token is 256 random bits, so it needs no slow hash: only its sha256 is kept, and a check
is one lookup in the digest's unique index. A token checked here is trusted for a second
(RECHECK) before the database is asked again, so a token revoked through another process
stops working within that second, and through this one at once; expiry is checked on
every use. When a token was last used is written behind, at most once a minute per token,
by a background thread: never a write per request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass

from ..records import utcnow
from .model import ANYWHERE, READ, UPLOAD, TokenScope, check_pattern

log = logging.getLogger(__name__)

PREFIX = "pypirepo_"
# 32 random bytes as URL-safe base64: 43 characters.
_SECRET_RE = re.compile(r"^pypirepo_[A-Za-z0-9_-]{43}$")
# What a token may be scoped to: reading, or uploading (which reads too).
TOKEN_PERMISSIONS = (READ, UPLOAD)
RECHECK = 1.0  # seconds a checked token is trusted before the database is asked again
LAST_USED_INTERVAL = 60.0  # seconds: last_used is written at most this often per token
IDLE = 300.0  # seconds without a use after which the writer thread ends
_MAX_CHECKED = 10_000


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def scope_of(permission: str = READ, repositories=(ANYWHERE,), projects=(ANYWHERE,),
             known_repositories=None) -> TokenScope:
    """A token's scope from what a user asks for; ValueError with the reason otherwise.
    permission: `read` or `upload` (which implies read)."""
    if permission not in TOKEN_PERMISSIONS:
        raise ValueError(f"permission must be one of {', '.join(TOKEN_PERMISSIONS)}, "
                         f"not {permission!r}")
    repositories = _words(repositories, "repositories")
    if ANYWHERE in repositories:
        repositories = [ANYWHERE]
    elif known_repositories is not None:
        unknown = sorted(set(repositories) - set(known_repositories))
        if unknown:
            raise ValueError(f"no repository named {', '.join(map(repr, unknown))}")
    patterns = [check_pattern(p) for p in _words(projects, "projects")]
    if ANYWHERE in patterns:
        patterns = [ANYWHERE]
    permissions = frozenset({READ, UPLOAD}) if permission == UPLOAD else frozenset({READ})
    return TokenScope(permissions, frozenset(repositories), tuple(dict.fromkeys(patterns)))


def _words(value, what: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value or \
            not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"{what} must be a list of names (or [\"*\"])")
    return [v.strip() for v in value]


def permission_of(scope: TokenScope) -> str:
    return UPLOAD if UPLOAD in scope.permissions else READ


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: everything but the secret (the prefix tells tokens apart)."""

    id: int
    user: str
    prefix: str
    scope: TokenScope
    note: str | None
    created: dt.datetime
    expires: dt.datetime | None
    last_used: dt.datetime | None
    revoked: dt.datetime | None

    @classmethod
    def of_row(cls, row) -> TokenInfo:
        scope = TokenScope(frozenset(row.permissions), frozenset(row.repositories),
                           tuple(row.projects))
        return cls(row.id, row.user, row.prefix, scope, row.note, row.created, row.expires,
                   row.last_used, row.revoked)

    def as_json(self) -> dict:
        scope = self.scope
        return {
            "id": self.id, "user": self.user, "prefix": self.prefix,
            "permission": permission_of(scope),
            "repositories": sorted(scope.repositories), "projects": list(scope.projects),
            "note": self.note, "created": _when(self.created),
            "expires": _when(self.expires), "last_used": _when(self.last_used),
            "revoked": _when(self.revoked),
        }


def _when(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


@dataclass(frozen=True)
class Checked:
    """A token that checked out: whose it is and what it may do."""

    id: int
    user: str
    scope: TokenScope
    expires: float | None  # epoch seconds


class TokenStore:
    """Makes, checks, lists and revokes API tokens (Access.identify asks check())."""

    def __init__(self, sql, recheck: float = RECHECK,
                 last_used_interval: float = LAST_USED_INTERVAL):
        self.sql = sql  # pypirepo.metadata.access.TokensSQL
        self.recheck = recheck
        self.last_used_interval = last_used_interval
        # digest -> (Checked, when it was read from the database: monotonic)
        self._checked: dict[str, tuple[Checked, float]] = {}
        self._lock = threading.Lock()
        self._reading: dict[str, threading.Lock] = {}  # digest -> held while it is read
        self._pending: dict[int, float] = {}  # token id -> last use (epoch) not written
        self._written: dict[int, float] = {}  # token id -> when its use was last written
        self._wake = threading.Event()
        self._flusher: threading.Thread | None = None
        self._closed = False

    # --- checking ------------------------------------------------------------------------

    @staticmethod
    def looks_like(secret: str) -> bool:
        # The whole shape, not only the prefix: a password that merely starts like a
        # token still logs in as a password.
        return _SECRET_RE.match(secret) is not None

    def vouches(self, digest: str) -> bool:
        """Whether the token of this digest, checked lately (within `recheck`), is still
        good (not revoked here since, not expired): check()'s answer from memory, for a
        caller that keeps the token's identity itself (Access's credential cache). A use
        is noted as check() notes it. False: ask check()."""
        return self._use(self._fresh(digest)) is not None

    def check(self, secret: str) -> Checked | None:
        """The token's owner and scope; None for an unknown, expired or revoked token.
        (Whether its owner still exists is the caller's question: Access.identity_of.)"""
        if _SECRET_RE.match(secret) is None:
            return None
        digest = digest_of(secret)
        hit = self._fresh(digest)
        if hit is None:
            # One read per token at a time: when its second is up, every request in flight
            # with it would otherwise read the same row (a burst of reads each second).
            with self._lock:
                reading = self._reading.setdefault(digest, threading.Lock())
            try:
                with reading:
                    hit = self._fresh(digest)  # read by another thread while this one waited
                    if hit is None:
                        hit = self._reread(digest)
            finally:
                with self._lock:
                    self._reading.pop(digest, None)
        return self._use(hit)

    def _use(self, hit: tuple[Checked, float] | None) -> Checked | None:
        """The token of a hit unless it expired (checked on every use), its use noted."""
        if hit is None:
            return None
        checked = hit[0]
        if checked.expires is not None and time.time() >= checked.expires:
            return None
        self._note_use(checked.id)
        return checked

    def _fresh(self, digest: str) -> tuple[Checked, float] | None:
        hit = self._checked.get(digest)
        return hit if hit is not None and time.monotonic() - hit[1] < self.recheck else None

    def _reread(self, digest: str) -> tuple[Checked, float] | None:
        now = time.monotonic()
        found = self._read(digest)
        if found is None:
            self._checked.pop(digest, None)
            return None
        if len(self._checked) >= _MAX_CHECKED:
            self._checked.clear()
        hit = self._checked[digest] = (found, now)
        return hit

    def _read(self, digest: str) -> Checked | None:
        row = self.sql.by_digest(digest)
        # The lookup found the row by its digest; compared again in constant time, so that
        # nothing about a secret's bytes shows in how long a refusal takes.
        if row is None or not hmac.compare_digest(row.digest, digest) or \
                row.revoked is not None:
            return None
        info = TokenInfo.of_row(row)
        expires = info.expires.replace(tzinfo=dt.timezone.utc).timestamp() \
            if info.expires is not None else None
        return Checked(row.id, row.user, info.scope, expires)

    def forget(self, token_id: int) -> None:
        """Drop what this process trusts of a token (it was revoked or changed here)."""
        with self._lock:
            for digest, (checked, _when_read) in list(self._checked.items()):
                if checked.id == token_id:
                    self._checked.pop(digest, None)

    # --- making and managing ---------------------------------------------------------------

    def create(self, user: str, scope: TokenScope, expires: dt.datetime | None = None,
               note: str | None = None) -> tuple[str, TokenInfo]:
        """(the secret, shown to its owner this once; the token as listed)."""
        secret = PREFIX + secrets.token_urlsafe(32)
        prefix = secret[:len(PREFIX) + 6]
        now = utcnow()
        values = {"user": user, "digest": digest_of(secret), "prefix": prefix,
                  "permissions": sorted(scope.permissions),
                  "repositories": sorted(scope.repositories), "projects": list(scope.projects),
                  "note": note, "created": now, "expires": expires}
        token_id = self.sql.add(**values)
        return secret, TokenInfo(token_id, user, prefix, scope, note, now, expires, None, None)

    def get(self, token_id: int) -> TokenInfo | None:
        row = self.sql.by_id(token_id)
        return self._with_pending(TokenInfo.of_row(row)) if row is not None else None

    def listed(self, user: str | None = None, revoked: bool = False) -> list[TokenInfo]:
        return [self._with_pending(TokenInfo.of_row(r)) for r in self.sql.listed(user, revoked)]

    def update(self, token_id: int, **values) -> bool:
        """note= and/or expires=."""
        changed = self.sql.update(token_id, **values)
        self.forget(token_id)
        return changed

    def revoke(self, token_id: int) -> bool:
        revoked = self.sql.revoke(token_id, utcnow())
        self.forget(token_id)
        return revoked

    def _with_pending(self, info: TokenInfo) -> TokenInfo:
        """A use this process has not written yet is newer than the row's."""
        pending = self._pending.get(info.id)
        if pending is None:
            return info
        used = dt.datetime.fromtimestamp(pending, dt.timezone.utc).replace(
            tzinfo=None, microsecond=0)
        if info.last_used is None or used > info.last_used:
            from dataclasses import replace

            return replace(info, last_used=used)
        return info

    # --- last_used, written behind ----------------------------------------------------------

    def _note_use(self, token_id: int) -> None:
        now = time.time()
        # A use noted less than a second ago already says when it was last used (written
        # to the second): no lock taken for the uses in between. (Should the writer take
        # that note just now, the time written is at most a second before this use.)
        if now - self._pending.get(token_id, 0.0) < 1.0:
            return
        with self._lock:
            # The writer is woken when a use is due, or is the first since the last write
            # (then it sleeps until that is due): twice a minute per token at most.
            wake = token_id not in self._pending
            self._pending[token_id] = now
            if wake and self._flusher is None and not self._closed:
                self._flusher = threading.Thread(target=self._flush_loop, daemon=True,
                                                 name="pypirepo-token-use")
                self._flusher.start()
        if wake:
            self._wake.set()

    def _due(self, now: float) -> tuple[dict[int, dt.datetime], float | None]:
        """(the uses to write now, seconds until the next one is due or None); under the
        lock."""
        due, wait = {}, None
        for token_id, used in list(self._pending.items()):
            left = self._written.get(token_id, -1e18) + self.last_used_interval - now
            if left <= 0:
                due[token_id] = dt.datetime.fromtimestamp(used, dt.timezone.utc).replace(
                    tzinfo=None, microsecond=0)
                del self._pending[token_id]
                self._written[token_id] = now
            else:
                wait = left if wait is None else min(wait, left)
        return due, wait

    def flush(self, everything: bool = False) -> int:
        """Write the uses that are due (all of them: everything=True); how many."""
        with self._lock:
            if everything:
                for token_id in self._pending:
                    self._written.pop(token_id, None)
            due, _wait = self._due(time.monotonic())
        self._write(due)
        return len(due)

    def _write(self, due: dict) -> None:
        if not due:
            return
        try:
            self.sql.record_use(due)
        except Exception as exc:  # noqa: BLE001 - the database is away: next time
            log.warning("could not record when %d API token(s) were last used: %s",
                        len(due), exc)
            with self._lock:
                for token_id, used in due.items():
                    self._written.pop(token_id, None)
                    self._pending.setdefault(token_id, used.replace(
                        tzinfo=dt.timezone.utc).timestamp())

    def _flush_loop(self) -> None:
        wait = None
        while not self._closed:
            woken = self._wake.wait(IDLE if wait is None else wait)
            self._wake.clear()
            with self._lock:
                if not woken and wait is None and not self._pending:
                    self._flusher = None  # idle: the next use starts another
                    return
                due, wait = self._due(time.monotonic())
            self._write(due)
            if wait is not None:
                wait = max(wait, 0.05)

    def close(self) -> None:
        """Write what is pending and stop the writer."""
        self._closed = True
        self._wake.set()
        self.flush(everything=True)
