"""Who may do what. For now: users from the ini and global read/write rules.

The full model (groups, per-project grants, tokens in SQL) builds on the same two
questions: `authenticate(user, password)` and `project_acl(name)`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from pathlib import Path

from pyramid.authorization import ALL_PERMISSIONS, ACLHelper, Allow, Authenticated, Everyone

from ..passwords import PASSWORDS  # noqa: F401 - also the scripts' and tests' way in
from ..settings import env_name

log = logging.getLogger(__name__)

# Longer credentials are refused before any hash is computed (access.identity.parse_basic):
# a hash costs the same for any length, but passlib refuses secrets over 4 KiB with an
# error, and nobody's user name or password is this long.
MAX_USER = 255
MAX_PASSWORD = 1024

READ, UPLOAD, DELETE = "read", "upload", "delete"
WRITE_PERMISSIONS = (UPLOAD, DELETE)


def principal(word: str) -> str:
    if word == "everyone":
        return Everyone
    if word == "authenticated":
        return Authenticated
    return "user:" + word


class CredentialCache:
    """Remembers verified credentials for a short time.

    A password hash is deliberately slow; clients send Basic auth on every request, and
    verifying each one would cost more than serving the page. Only successes are kept,
    keyed by a digest of the pair, never the password itself.
    """

    def __init__(self, ttl: float, maxsize: int = 10000):
        self.ttl = ttl
        self.maxsize = maxsize
        self._items: dict[bytes, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._salt = secrets.token_bytes(16)

    def _key(self, user: str, password: str) -> bytes:
        return hashlib.sha256(self._salt + user.encode() + b"\0" + password.encode()).digest()

    def get(self, user: str, password: str) -> str | None:
        if self.ttl <= 0:
            return None
        hit = self._items.get(self._key(user, password))
        if hit and hit[1] > time.monotonic():
            return hit[0]
        return None

    def put(self, user: str, password: str) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._items) >= self.maxsize:
                now = time.monotonic()
                self._items = {k: v for k, v in self._items.items() if v[1] > now}
                if len(self._items) >= self.maxsize:
                    self._items.clear()
            self._items[self._key(user, password)] = (user, time.monotonic() + self.ttl)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class ConfigAccess:
    login_summary = ""  # "user admin, password in ...": for the line that says it is ready

    def __init__(self, config, bootstrap_password: str | None = None):
        self.users = dict(config.users)
        self.admins = set(config.admins)
        self.read = [principal(w) for w in config.default_read]
        self.write = [principal(w) for w in config.default_write]
        self.bootstrap_user = config.bootstrap_user
        self._bootstrap_password = bootstrap_password
        if self.bootstrap_user and bootstrap_password:
            self.admins.add(self.bootstrap_user)
        self.credentials = CredentialCache(config.auth_cache_ttl)
        # What an unknown user's password is checked against, so that a wrong password
        # costs the same whether the user exists or not (user names cannot be found by
        # timing): a configured user's own hash, or passlib's dummy of the default scheme.
        self._decoy = next(iter(sorted(self.users.items())), (None, None))[1]
        self._hash_errors_logged: set[str] = set()
        self._root_acl = self._build_root_acl()
        self._everyone_may = {perm for action, who, perm in self._root_acl
                              if who == Everyone and isinstance(perm, str)}

    def authenticate(self, user: str, password: str) -> str | None:
        if not user or not password:
            return None
        cached = self.credentials.get(user, password)
        if cached is not None:
            return cached
        ok = False
        if user == self.bootstrap_user and self._bootstrap_password:
            ok = hmac.compare_digest(password.encode(), self._bootstrap_password.encode())
        elif user in self.users:
            ok = self._verify(user, password)
        if ok:
            self.credentials.put(user, password)
            return user
        if user not in self.users:
            self._waste_a_hash(password)
        return None

    def _verify(self, user: str, password: str) -> bool:
        try:
            return PASSWORDS.verify(password, self.users[user])
        except (ValueError, TypeError):
            # The start-up check knows the scheme; a hash damaged past its prefix only
            # shows here. Said once: whoever tries that user must not fill the log.
            if user not in self._hash_errors_logged:
                self._hash_errors_logged.add(user)
                log.error("the password hash of user %r cannot be read; fix user.%s",
                          user, user)
            return False

    def _waste_a_hash(self, password: str) -> None:
        """As long as checking a real user's password, with the answer thrown away."""
        try:
            if self._decoy is not None:
                PASSWORDS.verify(password, self._decoy)
            else:
                PASSWORDS.dummy_verify()
        except (ValueError, TypeError):
            pass

    def anonymous_may_read(self, repository, project: str | None) -> bool:
        """Whether anyone may read the project (or the repository's index) without logging
        in: pages then go out without asking who is asking, and caches may share them."""
        return READ in self._everyone_may

    def permits(self, user: str | None, repository, project: str | None,
                permission: str) -> bool:
        """Whether the user may do this to the project of the repository."""
        acl = self.project_acl(project) if project else self.root_acl()
        return bool(ACLHelper().permits(_Context(acl), self.principals(user), permission))

    def may(self, request, repository, project: str | None, permission: str) -> bool:
        """permits() for the request's user (a request with bad credentials may nothing)."""
        if request.pypirepo_bad_credentials:
            return False
        return self.permits(request.pypirepo_user, repository, project, permission)

    def readable(self, request, repository, names: list[str]) -> list[str]:
        """The names (of projects of the repository) the request's user may read, in
        the order given: one decision per class of projects, not one per name, so a
        listing of 100,000 projects costs no more than a few checks."""
        if self.may(request, repository, None, READ):
            return names
        return [n for n in names if self.may(request, repository, n, READ)]

    def open_to_everyone(self, permission: str, context) -> bool:
        """True when the ACL grants this permission to Everyone whatever the context."""
        return permission in self._everyone_may

    def principals(self, user: str | None) -> list[str]:
        if user is None:
            return [Everyone]
        found = [Everyone, Authenticated, "user:" + user]
        if user in self.admins:
            found.append("group:admin")
        return found

    def root_acl(self) -> list:
        return self._root_acl

    def _build_root_acl(self) -> list:
        acl = [(Allow, "group:admin", ALL_PERMISSIONS)]
        acl += [(Allow, p, READ) for p in self.read]
        acl += [(Allow, p, perm) for p in self.write for perm in WRITE_PERMISSIONS]
        # Writers can always read what they write.
        acl += [(Allow, p, READ) for p in self.write]
        return acl

    def project_acl(self, name: str) -> list:
        return self.root_acl()


class _Context:
    def __init__(self, acl):
        self.__acl__ = acl


HOW_TO_ADD_A_USER = ("make a password hash with `pypirepo-hash-password` and add "
                     "`user.<name> = <hash>` to [app:main] (or set PYPIREPO_USER_<NAME>=<hash>); "
                     "`auth.admins = <name>` makes them an admin")


def login_summary(config, settings, bootstrap_password: str | None) -> tuple[str, str | None]:
    """Who can log in, for the line that says the server is ready ("user admin, password
    in var/admin-password"), and the warning to log when nobody can: a production ini
    without users starts and then answers 401 to everyone, with nothing in the log."""
    parts = []
    if config.bootstrap_user and bootstrap_password:
        if settings.raw("auth.bootstrap_password"):
            where = f"from {env_name('auth.bootstrap_password')} or auth.bootstrap_password"
        else:
            where = f"in {config.bootstrap_password_file}"
        parts.append(f"user {config.bootstrap_user}, password {where}")
    if config.users:
        names = sorted(config.users)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        parts.append(f"users {shown}")
    if parts:
        return "; ".join(parts), None
    if Everyone in [principal(w) for w in config.default_read]:
        problem = "anyone may read, but nobody can log in to upload"
    else:
        problem = "nobody can log in, so every request is refused (401)"
    return "no user can log in yet", f"no user is defined: {problem}. To add one, " \
        f"{HOW_TO_ADD_A_USER}."


def bootstrap_password(config, settings) -> str | None:
    """The development account's password: from the environment, or made once and kept.

    Never a fixed password in a committed file: without PYPIREPO_AUTH_BOOTSTRAP_PASSWORD a
    random one is generated at first start, written (mode 600) to the password file and
    printed, and read back from there on later starts.
    """
    if not config.bootstrap_user:
        return None
    given = settings.raw("auth.bootstrap_password")
    if given:
        return given.strip()
    if not config.bootstrap_password_file:
        return None
    path = Path(config.bootstrap_password_file)
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(18)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    print(
        f"pypirepo: created user {config.bootstrap_user!r} with password {password}"
        f" (kept in {path})",
        flush=True,
    )
    return password


def includeme(config):
    """The access backend, and a word in the log when nobody can log in."""
    from ..interfaces import IAccess, IAppConfig, ISettings

    registry = config.registry
    app_config, settings = registry.getUtility(IAppConfig), registry.getUtility(ISettings)
    password = bootstrap_password(app_config, settings)
    access = ConfigAccess(app_config, password)
    # Who can log in: said once the server is listening (server.py), after the URL.
    access.login_summary, nobody = login_summary(app_config, settings, password)
    if nobody:
        log.warning(nobody)
    registry.registerUtility(access, IAccess)
