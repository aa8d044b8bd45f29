"""The `config` access backend: users, groups and grants written in the ini.

    user.alice = <hash from pypirepo-hash-password>     (or PYPIREPO_USER_ALICE=<hash>)
    group.team = alice bob
    auth.admins = alice
    repository.release.read = everyone                  (the whole repository)
    repository.release.upload = group:team
    grants =                                            (some projects only)
        release  team-*  read    group:team
        release  team-*  upload  group:team

A repository without its own `read` line is readable by `pypi.default_read`, and one
without `upload` / `delete` lines writable by `pypi.default_write`: a server that declares
no grants behaves as the single index did, and those two keys are the default
repository's grants. A blank line means that default too; `nobody` leaves a permission to
the server's admins, the project's owners and the `grants` lines.
"""

from __future__ import annotations

import hmac
import logging

from ..passwords import PASSWORDS, waste_a_hash
from ..settings import ConfigError, as_list
from .model import (
    ADMIN,
    ANYWHERE,
    DELETE,
    NOBODY,
    PERMISSIONS,
    READ,
    UPLOAD,
    Grant,
    check_pattern,
    principal_of,
)

log = logging.getLogger(__name__)


class ConfigBackend:
    """Users, groups and grants as the settings say; nothing changes while it runs."""

    name = "config"
    version = 0  # never changes: the policy is compiled once

    def __init__(self, users: dict[str, str], groups: dict[str, frozenset[str]],
                 admins: set[str], grants: list[Grant], bootstrap: tuple[str, str] | None):
        self.users = users
        self.groups = groups
        self.admins = set(admins)
        self._grants = grants
        self._bootstrap = bootstrap
        if bootstrap is not None:
            self.admins.add(bootstrap[0])
        self._memberships: dict[str, frozenset[str]] = {}
        for group, members in groups.items():
            for member in members:
                self._memberships[member] = self._memberships.get(member, frozenset()) | {group}
        # What an unknown user's password is checked against, so that a wrong password
        # costs the same whether the user exists or not (user names cannot be found by
        # timing): a configured user's own hash, or passlib's dummy of the default scheme.
        self._decoy = next(iter(sorted(users.items())), (None, None))[1]
        self._hash_errors_logged: set[str] = set()

    @classmethod
    def from_settings(cls, s, app_config, repositories, bootstrap_password: str | None
                      ) -> ConfigBackend:
        groups = {}
        for name, members in s.prefixed("group.").items():
            key = f"group.{name}"
            try:
                principal_of(f"group:{name}")
                groups[name] = frozenset(principal_of(m) for m in as_list(members or ""))
            except ValueError as exc:
                raise ConfigError(key, str(exc)) from None
        bootstrap = (app_config.bootstrap_user, bootstrap_password) \
            if app_config.bootstrap_user and bootstrap_password else None
        return cls(dict(app_config.users), groups, set(app_config.admins),
                   config_grants(s, app_config, repositories), bootstrap)

    # --- who is who ----------------------------------------------------------------------

    def verify(self, user: str, password: str) -> bool:
        """Whether the password is the user's; as slow for an unknown user."""
        if self._bootstrap is not None and user == self._bootstrap[0]:
            ok = hmac.compare_digest(password.encode(), self._bootstrap[1].encode())
            self._waste_a_hash(password)  # as long as a real user's check
            return ok
        if user in self.users:
            return self._verify(user, password)
        self._waste_a_hash(password)
        return False

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
        waste_a_hash(password, self._decoy)

    def password_hash(self, user: str) -> str | None:
        """The hash the user's password is checked against (access.rehash, the sessions'
        stamp); None for the development account, whose password is given in plain."""
        if self._bootstrap is not None and user == self._bootstrap[0]:
            return None
        return self.users.get(user)

    def exists(self, user: str) -> bool:
        return user in self.users or (self._bootstrap is not None
                                      and user == self._bootstrap[0])

    def groups_of(self, user: str) -> frozenset[str]:
        return self._memberships.get(user, frozenset())

    def is_admin(self, user: str) -> bool:
        return user in self.admins

    def user_names(self) -> list[str]:
        names = set(self.users)
        if self._bootstrap is not None:
            names.add(self._bootstrap[0])
        return sorted(names)

    def grants(self) -> list[Grant]:
        return list(self._grants)


def config_grants(s, app_config, repositories) -> list[Grant]:
    """The grants the settings declare, with the defaults for what they leave out."""
    grants: list[Grant] = []
    for repo in repositories:
        for permission in PERMISSIONS:
            key = f"repository.{repo.name}.{permission}"
            words = s.get_value(key, as_list, None)
            if words is None:
                words = _default_words(app_config, repo, permission)
            elif NOBODY in words:
                # A blank line means "the default" (as every setting does), so closing a
                # repository to all but its admins, owners and pattern grants takes a word.
                if len(words) > 1:
                    raise ConfigError(key, f"{NOBODY!r} stands alone")
                words = []
            for word in words:
                try:
                    grants.append(Grant(repo.name, ANYWHERE, permission, principal_of(word)))
                except ValueError as exc:
                    raise ConfigError(key, str(exc)) from None
    names = {r.name for r in repositories} | {ANYWHERE}
    for number, line in enumerate((s.get_value("grants", _lines, []) or []), 1):
        parts = line.split()
        if len(parts) < 4:
            raise ConfigError("grants", f"line {number}: {line!r}: expected <repository> "
                              "<project pattern> <permission> <who> [<who> ...]")
        repo, pattern, permission, *who = parts
        problem = None
        if repo not in names:
            problem = f"{repo!r} is not a declared repository"
        elif permission not in PERMISSIONS:
            problem = f"{permission!r} is not one of {', '.join(PERMISSIONS)}"
        if problem:
            raise ConfigError("grants", f"line {number}: {problem}")
        try:
            pattern = check_pattern(pattern)
            grants += [Grant(repo, pattern, permission, principal_of(w)) for w in who]
        except ValueError as exc:
            raise ConfigError("grants", f"line {number}: {exc}") from None
    return grants


def _default_words(app_config, repo, permission: str) -> list[str]:
    if permission == READ:
        return app_config.default_read
    if permission == UPLOAD and repo.kind != "proxy":
        return app_config.default_write
    if permission == DELETE:
        return app_config.default_write
    return []  # admin: the server's admins (auth.admins) only


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()
            and not line.strip().startswith("#")]


__all__ = ["ConfigBackend", "config_grants", "ADMIN"]
