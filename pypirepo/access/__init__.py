"""Who may do what: users, groups and grants (per repository, per project pattern), API
tokens, and the decisions the security policy and the repositories ask for.

Two backends hold the users, groups and grants, chosen by `auth.backend`: `config` (the
ini, pypirepo.access.config) and `sql` (the database, changed through the admin API and
the command line). Either way this module's Access answers the questions: who is this
(identify), and may they (may, may_somewhere, visible); pypirepo.access.policy decides.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
import threading
import time
from pathlib import Path

from ..passwords import PASSWORDS  # noqa: F401 - also the scripts' and tests' way in
from ..settings import env_name
from .model import (  # noqa: F401 - the words of access, for whoever imports them from here
    MAX_PASSWORD,
    MAX_USER,
    ADMIN,
    DELETE,
    EVERYONE,
    PERMISSIONS,
    READ,
    UPLOAD,
    WRITE_PERMISSIONS,
    Grant,
    Identity,
    TokenScope,
)
from .identity import BadCredentials, parse_basic
from .policy import Policy
from .rehash import Rehash
from .throttle import LoginThrottle, Throttled  # noqa: F401 - Throttled: identify raises it
from .tokens import digest_of

log = logging.getLogger(__name__)

# The user name the publishing tools send with an API token (twine, uv, poetry, pdm,
# hatch all say `__token__`).
TOKEN_USER = "__token__"


class CredentialCache:
    """Remembers verified credentials for a short time.

    A password hash is deliberately slow; clients send Basic auth on every request, and
    verifying each one would cost more than serving the page. Only successes are kept,
    keyed by a salted digest of the credentials as a Basic header carries them (so that a
    request's header is looked up without decoding it), never the password itself. An API
    token's entry also names the token's digest: it answers only while the token store
    vouches for the token (TokenStore.vouches: not revoked, not expired, checked lately).
    """

    def __init__(self, ttl: float, maxsize: int = 10000):
        self.ttl = ttl
        self.maxsize = maxsize
        # key -> (identity, expiry: monotonic, the token's digest or None)
        self._items: dict[bytes, tuple[Identity, float, str | None]] = {}
        self._lock = threading.Lock()
        self._salt = secrets.token_bytes(16)

    def _key(self, basic: bytes) -> bytes:
        return hashlib.sha256(self._salt + basic).digest()

    @staticmethod
    def _basic(user: str, password: str) -> bytes | None:
        """The pair as a Basic header's value encodes it (what clients send); None for a
        user name with a colon, which Basic can't carry (`a:b` + `c` would be `a` +
        `b:c`): such a pair is never kept."""
        if ":" in user:
            return None
        return base64.b64encode(f"{user}:{password}".encode())

    def get(self, user: str, password: str) -> Identity | None:
        """The identity of a user and password verified lately (never a token's)."""
        basic = self._basic(user, password)
        found = self.find(basic) if basic is not None else None
        return found[0] if found is not None and found[1] is None else None

    def find(self, basic: bytes) -> tuple[Identity, str | None] | None:
        """(identity, token digest or None) of a Basic header's value verified lately."""
        if self.ttl <= 0:
            return None
        hit = self._items.get(self._key(basic))
        if hit and hit[1] > time.monotonic():
            return hit[0], hit[2]
        return None

    def put(self, user: str, password: str, identity: Identity,
            token: str | None = None) -> None:
        """Remember a verified pair; token: the digest of the API token it was."""
        basic = self._basic(user, password)
        if self.ttl <= 0 or basic is None:
            return
        key = self._key(basic)
        with self._lock:
            if len(self._items) >= self.maxsize:
                now = time.monotonic()
                self._items = {k: v for k, v in self._items.items() if v[1] > now}
                if len(self._items) >= self.maxsize:
                    self._items.clear()
            self._items[key] = (identity, time.monotonic() + self.ttl, token)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class Access:
    """The access service every request asks (registered as IAccess)."""

    login_summary = ""  # "user admin, password in ...": for the line that says it is ready
    # The repositories whose projects' owners may not manage them (access/owners.py).
    owners_locked: frozenset[str] = frozenset()

    def __init__(self, backend, repositories, cache_ttl: float = 300.0, tokens=None,
                 owners=None, throttle: LoginThrottle | None = None):
        self.backend = backend
        self.repositories = repositories
        self.tokens = tokens  # pypirepo.access.tokens.TokenStore, or None: no tokens
        self.owners = owners  # metadata.access.OwnersSQL, or None: nobody owns anything
        self.credentials = CredentialCache(cache_ttl)
        self.throttle = throttle or LoginThrottle()  # failed logins (access.throttle)
        self.rehash = Rehash(backend)
        self._policy: Policy | None = None
        self._version = None
        self._lock = threading.Lock()

    # --- the policy, compiled from the backend's grants ----------------------------------

    @property
    def policy(self) -> Policy:
        version = self.backend.version
        policy = self._policy
        if policy is None or version != self._version:
            with self._lock:
                if self._policy is None or self.backend.version != self._version:
                    self._version = self.backend.version
                    owners = self.owners
                    self._policy = Policy(self.backend.grants(),
                                          owners.owners if owners else None,
                                          owners.owned if owners else None)
                    self.credentials.clear()  # a user removed or changed: ask again
                policy = self._policy
        return policy

    def owners_changed(self) -> None:
        """After the owners API changed who owns what (and bumped the version in the
        database, for the other processes): this process's policy is compiled again, as
        its filtered listings depend on who owns what."""
        reload = getattr(self.backend, "reload", None)
        if reload is not None:
            reload()
        with self._lock:
            self._policy = None

    # --- who is asking -------------------------------------------------------------------

    def identify(self, user: str, password: str, address: str | None = None,
                 tokens: bool = True) -> Identity | None:
        """The identity of Basic credentials: a user and their password, or an API token
        (as the password, with `__token__` or its owner's name as the user); tokens=False:
        a password only (the login form). address: the client's, for the throttle, which
        raises Throttled before anything is checked when too many attempts failed."""
        if not user or not password:
            return None
        token = tokens and self.tokens is not None and self.tokens.looks_like(password)
        # Tokens can't be guessed: their failures count against the address alone.
        account = None if token or user == TOKEN_USER else user
        self.throttle.check(account, address)
        self.policy  # noqa: B018 - users or groups changed: the cache is cleared first
        identity = None
        if token:
            found = self.tokens.check(password)
            if found is not None and user in (TOKEN_USER, found.user):
                identity = self.identity_of(found.user, token=found.scope, via="token")
            if identity is not None:
                # Answered from the cache only while the store vouches for the token: a
                # revoked one stops at once here, within its recheck elsewhere.
                self.credentials.put(user, password, identity, token=digest_of(password))
        else:
            cached = self.credentials.get(user, password)
            if cached is not None:
                return cached
            if user != TOKEN_USER and self.backend.verify(user, password):
                identity = self.identity_of(user)
                self.rehash.after_login(user, password)
            if identity is not None:
                self.credentials.put(user, password, identity)
        if identity is None:
            self.throttle.failed(account, address, password)
        return identity

    def cached_identity(self, header: str, address: str | None) -> Identity | None:
        """The identity of an Authorization header whose credentials were checked lately
        (the credential cache, looked up by the header's digest without decoding it; a
        token's entry only while the token store vouches for it), or None: then the
        header must be checked in full (by identify, which also throttles)."""
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            basic = value.strip().encode("ascii")
        except UnicodeEncodeError:
            return None
        self.policy  # noqa: B018 - users or groups changed: the cache is cleared first
        found = self.credentials.find(basic)
        if found is None:
            return None
        identity, token = found
        if token is not None:
            # Tokens can't be guessed: their failures count against the address alone.
            if self.tokens is None or not self.throttle.allows(None, address):
                return None
            if not self.tokens.vouches(token):
                # Its second is up: the store reads it again now (one read, whatever the
                # requests in flight), not each of them through the router.
                return self._recheck(header, address)
        # A blocked account or address is refused even its right password: the router
        # answers it 429, as identify would.
        elif not self.throttle.allows(identity.user, address):
            return None
        return identity

    def _recheck(self, header: str, address: str | None) -> Identity | None:
        try:
            pair = parse_basic(header)
            return self.identify(*pair, address=address) if pair is not None else None
        except (BadCredentials, Throttled):
            return None  # the router answers it

    def identity_of(self, user: str, token: TokenScope | None = None,
                    via: str = "password") -> Identity | None:
        """The identity of a user the caller vouches for (a session, a checked token, a
        trusted proxy's header); None when there is no such user (any more)."""
        backend = self.backend
        if not backend.exists(user):
            return None
        return Identity(user, admin=backend.is_admin(user), groups=backend.groups_of(user),
                        token=token, via=via)

    # --- decisions -----------------------------------------------------------------------

    def may(self, who, repository, project: str | None, permission: str) -> bool:
        """who: an Identity, None (anonymous), or a request (its identity; nothing at all
        when its credentials could not be read)."""
        if who is not None and type(who) is not Identity:  # (hasattr raises for the others)
            if who.pypirepo_bad_credentials:
                return False
            who = who.identity
        return self.policy.may(who, repository.name, project, permission)

    def readable(self, request, repository, names: list[str]) -> list[str]:
        """The names (projects of the repository) the request's caller may read, in the
        order given: one decision per class of projects (policy.visible)."""
        if request.pypirepo_bad_credentials:
            return []
        return self.visible(request.identity, repository, names)

    def reads_all(self, request, repository) -> bool:
        """Whether the request's caller may read every project of the repository (of a
        group: of the group and of every member), so that a listing of it needs no
        filter; False does not mean they may read nothing (readable() tells)."""
        if request.pypirepo_bad_credentials:
            return False
        identity, policy = request.identity, self.policy
        return all(policy.reads_all(identity, r.name) for r in _with_members(repository))

    def may_somewhere(self, identity: Identity | None, repository, permission: str) -> bool:
        return self.policy.may_somewhere(identity, repository.name, permission)

    def visible(self, identity: Identity | None, repository, names: list[str]) -> list[str]:
        return self.policy.visible(identity, repository.name, names)

    def anonymous_may_read(self, repository, project: str | None) -> bool:
        """Whether anyone may read the project (or, None, the repository's index as a
        whole) without logging in: pages then go out without asking who is asking (the
        fast path), and caches may share them."""
        return self.policy.may(None, repository.name, project, READ)

    def anonymous_may_write(self) -> bool:
        """Whether anonymous requests may write anywhere (the body gate lets their
        bodies in then)."""
        policy = self.policy
        return any(policy.may_somewhere(None, r.name, p) for r in self.repositories
                   for p in WRITE_PERMISSIONS)


HOW_TO_ADD_A_USER = ("make a password hash with `pypirepo-hash-password` and add "
                     "`user.<name> = <hash>` to [app:main] (or set PYPIREPO_USER_<NAME>=<hash>); "
                     "`auth.admins = <name>` makes them an admin (with auth.backend = sql: "
                     "`pypirepo-user <ini> add <name> --admin`)")


def login_summary(config, settings, bootstrap_password: str | None,
                  stored_users: int = 0) -> tuple[str, str | None]:
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
    if stored_users:  # the sql backend's
        parts.append(f"{stored_users} user{'s' if stored_users > 1 else ''} in the database")
    if parts:
        return "; ".join(parts), None
    if EVERYONE in config.default_read:
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
    """The access service (after the repositories: grants name them), and a word in the
    log when nobody can log in."""
    from ..interfaces import IAccess, IAppConfig, IDatabase, IRepositories, ISettings
    from ..metadata.access import OwnersSQL
    from .backends import backend_from_settings
    from .owners import owners_manage_from_settings

    registry = config.registry
    app_config, settings = registry.getUtility(IAppConfig), registry.getUtility(ISettings)
    repositories = registry.getUtility(IRepositories)
    password = bootstrap_password(app_config, settings)
    db = registry.getUtility(IDatabase)
    backend, tokens = backend_from_settings(settings, app_config, repositories, password, db)
    access = Access(backend, repositories, app_config.auth_cache_ttl, tokens,
                    OwnersSQL(db.session_factory), LoginThrottle.from_settings(settings))
    access.owners_locked = owners_manage_from_settings(settings, repositories)
    access.policy  # noqa: B018 - compiled now: a bad grant stops the start, not a request
    stored = len(backend.snapshot().users) if backend.name == "sql" else 0
    access.login_summary, nobody = login_summary(app_config, settings, password, stored)
    if nobody:
        log.warning(nobody)
    registry.registerUtility(access, IAccess)


def _with_members(repository) -> list:
    """The repository, and for a group its members, theirs, ... (each once)."""
    found, todo = [], [repository]
    while todo:
        repo = todo.pop(0)
        if repo not in found:
            found.append(repo)
            todo.extend(getattr(repo, "members", ()))
    return found
