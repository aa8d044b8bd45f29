"""Password hashes brought up to the current policy (pypirepo.passwords.PASSWORDS) when
their user logs in: the only moment the password is known.

A backend takes part through optional methods:

- `password_hash(user) -> str | None`: the stored hash (None: none, e.g. the development
  account, whose password is given in plain). Without it nothing is rehashed, and
  sessions are not ended by a password change (pypirepo.access.session's stamp).
- `rehash(user, new_hash)`: store a stronger hash of the same password; False when this
  user's hash can't be stored (a user of the ini under the sql backend: the log says
  what to do, as for the config backend). It ends the user's other browser sessions
  once, as their stamp is made from the hash.
- `set_password(user, password)`: a new password (the account page; Refused for a user
  it can't change); without it the account page explains how to change the password
  where the users are kept.

The config backend has password_hash only: the ini can't be rewritten, so the log says
once per user what to do.
"""

from __future__ import annotations

import logging
import threading

from ..passwords import PASSWORDS
from ..settings import env_name

log = logging.getLogger(__name__)


class Rehash:
    def __init__(self, backend):
        self.backend = backend
        self._told: set[str] = set()
        self._lock = threading.Lock()

    def after_login(self, user: str, password: str) -> None:
        """The password was right: store a new hash if the policy wants one."""
        get = getattr(self.backend, "password_hash", None)
        hashed = get(user) if get is not None else None
        if not hashed:
            return
        try:
            outdated = PASSWORDS.needs_update(hashed)
        except (ValueError, TypeError):
            return  # a hash the policy can't read was not verified either
        if not outdated:
            return
        store = getattr(self.backend, "rehash", None)
        if store is not None:
            try:
                stored = store(user, PASSWORDS.hash(password))
            except Exception as exc:  # noqa: BLE001 - the login stands; next time, then
                log.warning("could not store the updated password hash of user %r: %s",
                            user, exc)
                return
            if stored is not False:
                log.info("the password hash of user %r was updated to the current policy",
                         user)
                return
        with self._lock:
            if user in self._told or len(self._told) > 10000:
                return
            self._told.add(user)
        scheme = PASSWORDS.identify(hashed)
        log.warning("the password hash of user %r (%s) is weaker than the current policy "
                    "(%s): make a new one with `pypirepo-hash-password` and replace "
                    "user.%s (or %s) with it", user, scheme, PASSWORDS.default_scheme(),
                    user, env_name(f"user.{user}"))
