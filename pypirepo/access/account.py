"""What a signed-in user changes of their own account: the password, and API tokens.

The web UI's account page (views/ui/account.py) calls these; they never render. A
backend that can store a password has `set_password(user, password)` (the sql backend:
it hashes and stores it, or refuses with Refused for a user the ini declares); the config
backend has none: the ini holds the users, so the new password's hash is handed back to
be put there.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..errors import Refused
from ..passwords import PASSWORDS
from ..records import utcnow
from . import MAX_PASSWORD, Identity
from .model import ANYWHERE, READ, UPLOAD, TokenScope, check_pattern

MIN_PASSWORD = 8
# How long a new token lives: the form's choices, in days (None: until revoked).
TOKEN_LIFETIMES = {"30": 30, "90": 90, "365": 365, "never": None}
MAX_NOTE = 200


class FormErrors(Exception):
    """What is wrong with a form: field name -> message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(", ".join(errors.values()))
        self.errors = errors


@dataclass(frozen=True)
class PasswordChange:
    stored: bool  # the backend holds the new password now
    new_hash: str | None = None  # when it can't: the hash to declare the user with
    reason: str | None = None  # and why it can't, when the backend said so


def may_manage(identity: Identity | None) -> bool:
    """Whether this identity may change its account: a user's own login, never an API
    token (a read token must not make itself an upload token)."""
    return identity is not None and identity.token is None


def change_password(access, user: str, current: str, new: str, again: str,
                    address: str | None) -> PasswordChange:
    """The new password stored, or its hash to declare; FormErrors for the form's
    mistakes; Throttled (from the password check) after too many wrong ones."""
    errors = {}
    if not current:
        errors["current_password"] = "Enter your current password."
    if len(new) < MIN_PASSWORD:
        errors["new_password"] = f"Use at least {MIN_PASSWORD} characters."
    elif len(new) > MAX_PASSWORD:
        errors["new_password"] = f"Use at most {MAX_PASSWORD} characters."
    elif new != again:
        errors["new_password_again"] = "The two new passwords are not the same."
    if errors:
        raise FormErrors(errors)
    # The current password is checked like a login (and throttled like one): a session
    # left open must not be a way to guess it.
    if access.identify(user, current, address=address, tokens=False) is None:
        raise FormErrors({"current_password": "That is not your current password."})
    if new == current:
        raise FormErrors({"new_password": "That is your current password: choose another."})
    setter = getattr(access.backend, "set_password", None)
    reason = None
    if setter is not None:
        try:
            setter(user, new)
        except Refused as exc:
            reason = exc.message  # e.g. a user the ini declares: the ini holds it
        else:
            access.credentials.clear()  # the old password must stop working at once
            return PasswordChange(stored=True)
    return PasswordChange(stored=False, new_hash=PASSWORDS.hash(new), reason=reason)


@dataclass(frozen=True)
class TokenRequest:
    scope: TokenScope
    expires: dt.datetime | None
    note: str | None


def token_request(form, repository_names) -> TokenRequest:
    """A new token's scope, expiry and note from the account page's form; FormErrors."""
    errors = {}
    permission = form.get("permission", READ)
    if permission not in (READ, UPLOAD):
        errors["permission"] = "Choose read or upload."
    repository = form.get("repository", ANYWHERE)
    if repository != ANYWHERE and repository not in repository_names:
        errors["repository"] = "Choose a repository of this server."
    patterns = []
    for word in (form.get("projects") or ANYWHERE).replace(",", " ").split():
        try:
            patterns.append(check_pattern(word))
        except ValueError as exc:
            errors["projects"] = str(exc)
            break
    lifetime = form.get("expires", "90")
    if lifetime not in TOKEN_LIFETIMES:
        errors["expires"] = "Choose one of the lifetimes offered."
    note = (form.get("note") or "").strip()
    if len(note) > MAX_NOTE:
        errors["note"] = f"Keep the note under {MAX_NOTE} characters."
    elif any(ch < " " for ch in note):
        errors["note"] = "The note must be one line of text."
    if errors:
        raise FormErrors(errors)
    if not patterns or ANYWHERE in patterns:
        patterns = [ANYWHERE]
    days = TOKEN_LIFETIMES[lifetime]
    return TokenRequest(
        TokenScope(frozenset({READ, UPLOAD}) if permission == UPLOAD else frozenset({READ}),
                   frozenset({repository}), tuple(dict.fromkeys(patterns))),
        utcnow() + dt.timedelta(days=days) if days else None,
        note or None)
