"""Managing access: users, groups, grants and API tokens, for the admin JSON API and the
`pypirepo-user` command alike. Who may manage what is decided here, and what comes in is
checked here: the views only parse JSON and render the answers.

- Users, groups and grants: server admins, and only with `auth.backend = sql` (with
  `config` the ini holds them: they are listed, and a change is refused with the reason).
- API tokens: every user makes, lists, changes and revokes their own; admins anyone's.
  A token cannot manage tokens nor administer: whoever holds a read token could
  otherwise make themselves an upload token.

Every refusal is a Refused (4xx, with the reason) or LoginRequired (nobody logged in).
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from ..errors import LoginRequired, Refused
from ..records import utcnow
from ..settings import as_duration
from .model import ANYWHERE, READ, USER_RE, Grant, Identity
from .sql import check_group_name, check_user_name
from .tokens import TokenInfo, scope_of

# Who the command line acts as: the operator of the machine, an admin.
log = logging.getLogger(__name__)

CONSOLE = Identity("(console)", admin=True, via="console")
MAX_NOTE = 1000
MAX_PASSWORD = 1024
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}"
                       r"([T ]\d{2}:\d{2}(:\d{2})?(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")


class AccessAdmin:
    def __init__(self, access):
        self.access = access  # pypirepo.access.Access

    @property
    def backend(self):
        return self.access.backend

    @property
    def tokens(self):
        return self.access.tokens

    # --- who may ---------------------------------------------------------------------------

    @staticmethod
    def require_user(identity: Identity | None) -> Identity:
        if identity is None:
            raise LoginRequired()
        if identity.token is not None:
            raise Refused(403, "An API token cannot manage tokens or administer the server; "
                               "log in with your password.")
        return identity

    def require_admin(self, identity: Identity | None) -> Identity:
        identity = self.require_user(identity)
        if not identity.admin:
            raise Refused(403, f"The user {identity.user!r} isn't a server admin.")
        return identity

    def changeable(self):
        """The backend that can change, or the reason it can't."""
        if self.backend.name != "sql":
            raise Refused(409, "Users, groups and grants are kept in the ini "
                               "(auth.backend = config): change them there, or set "
                               "auth.backend = sql to keep them in the database.")
        return self.backend

    # --- users -----------------------------------------------------------------------------

    def users(self, who) -> list[dict]:
        self.require_admin(who)
        backend = self.backend
        if backend.name == "sql":
            return backend.users()
        return [{"name": name, "admin": backend.is_admin(name),
                 "groups": sorted(backend.groups_of(name)), "source": "ini",
                 "password": True} for name in backend.user_names()]

    def user(self, who, name: str) -> dict:
        found = next((u for u in self.users(who) if u["name"] == name), None)
        if found is None:
            raise Refused(404, f"No user named {name!r}.")
        return found

    def add_user(self, who, payload: dict) -> dict:
        self.require_admin(who)
        fields(payload, required={"name": str}, optional={"password": (str, type(None)),
                                                          "admin": bool})
        backend = self.changeable()
        name = check_user_name(payload["name"])
        backend.add_user(name, checked_password(payload.get("password")),
                         payload.get("admin", False))
        _audit(who, f"added user {name!r}" + (" (admin)" if payload.get("admin") else ""))
        return self.user(who, name)

    def change_user(self, who, name: str, payload: dict) -> dict:
        self.require_admin(who)
        fields(payload, optional={"password": (str, type(None)), "admin": bool})
        backend = self.changeable()
        if not backend.exists(name):
            raise Refused(404, f"No user named {name!r}.")
        if "password" in payload:
            backend.set_password(name, checked_password(payload["password"]))
        if "admin" in payload:
            backend.set_admin(name, payload["admin"])
        _audit(who, f"changed user {name!r}: {', '.join(sorted(payload)) or 'nothing'}")
        return self.user(who, name)

    def remove_user(self, who, name: str) -> None:
        self.require_admin(who)
        backend = self.changeable()
        if not backend.exists(name):  # a name no user can have is never looked up
            raise Refused(404, f"No user named {name!r}.")
        backend.remove_user(name)
        _audit(who, f"removed user {name!r}")

    # --- groups ----------------------------------------------------------------------------

    def groups(self, who) -> list[dict]:
        self.require_admin(who)
        backend = self.backend
        found = backend.groups() if backend.name == "sql" else \
            {g: sorted(m) for g, m in sorted(backend.groups.items())}
        ini = backend.ini_groups() if backend.name == "sql" else frozenset(found)
        return [{"name": g, "members": m, "source": "ini" if g in ini else "database"}
                for g, m in found.items()]

    def group(self, who, name: str) -> dict:
        found = next((g for g in self.groups(who) if g["name"] == name), None)
        if found is None:
            raise Refused(404, f"No group named {name!r}.")
        return found

    def add_group(self, who, payload: dict) -> dict:
        self.require_admin(who)
        fields(payload, required={"name": str}, optional={"members": list})
        backend = self.changeable()
        name = check_group_name(payload["name"])
        if name in backend.groups():
            raise Refused(409, f"There is a group {name!r} already.")
        backend.set_group(name, member_names(payload.get("members", [])))
        _audit(who, f"added group {name!r}")
        return self.group(who, name)

    def set_group(self, who, name: str, payload: dict) -> dict:
        """The group's members are these (made when it does not exist)."""
        self.require_admin(who)
        fields(payload, required={"members": list})
        self.changeable().set_group(check_group_name(name), member_names(payload["members"]))
        _audit(who, f"set the members of group {name!r}: {', '.join(payload['members'])}")
        return self.group(who, name)

    def remove_group(self, who, name: str) -> None:
        self.require_admin(who)
        backend = self.changeable()
        if name not in backend.groups():
            raise Refused(404, f"No group named {name!r}.")
        backend.remove_group(name)
        _audit(who, f"removed group {name!r}")

    def add_member(self, who, name: str, user: str) -> dict:
        """One more member of an existing group (the web UI's form)."""
        group = self.group(who, name)
        if user in group["members"]:
            raise Refused(409, f"{user!r} is a member of {name!r} already.")
        return self._members(who, name, [*group["members"], user], f"added {user!r} to")

    def remove_member(self, who, name: str, user: str) -> dict:
        group = self.group(who, name)
        backend = self.changeable()
        if user not in group["members"]:
            raise Refused(404, f"{user!r} is not a member of {name!r}.")
        ini = set(backend.base.groups.get(name, ()))
        if user in ini:
            raise Refused(409, f"{user!r} is a member of {name!r} by the ini "
                               f"(group.{name}): change it there.")
        kept = [m for m in group["members"] if m != user and m not in ini]
        return self._members(who, name, kept, f"removed {user!r} from")

    def _members(self, who, name: str, members: list[str], what: str) -> dict:
        self.changeable().set_group(name, members, create=False)
        _audit(who, f"{what} group {name!r}")
        return self.group(who, name)

    # --- grants ----------------------------------------------------------------------------

    def grants(self, who) -> list[dict]:
        self.require_admin(who)
        return listed_grants(self.backend)

    def add_grant(self, who, payload: dict) -> dict:
        self.require_admin(who)
        fields(payload, required={"repository": str, "permission": str, "principal": str},
               optional={"pattern": str})
        grant_id = self.changeable().add_grant(Grant(
            payload["repository"], payload.get("pattern", ANYWHERE), payload["permission"],
            payload["principal"]))
        made = self.grant(who, grant_id)
        _audit(who, f"granted {grant_words(made)} (grant {grant_id})")
        return made

    def grant(self, who, grant_id: int) -> dict:
        self.require_admin(who)
        backend = self.changeable()
        found = next((g for i, g in backend.stored_grants() if i == grant_id), None)
        if found is None:
            raise Refused(404, f"No grant {grant_id} in the database.")
        return grant_json(found, grant_id)

    def remove_grant(self, who, grant_id: int) -> None:
        self.require_admin(who)
        gone = self.changeable().remove_grant(grant_id)
        _audit(who, f"revoked grant {grant_id}: {grant_words(grant_json(gone, grant_id))}")

    # --- API tokens --------------------------------------------------------------------------

    def token_list(self, who, user: str | None = None, everyone: bool = False,
                   revoked: bool = False) -> list[dict]:
        """The caller's own tokens; an admin's choice of user, or everyone's."""
        who = self.require_user(who)
        if everyone or (user is not None and user != who.user):
            self.require_admin(who)
            if user is not None and not USER_RE.match(user):
                raise Refused(400, f"{user[:60]!r} is not a user name.")
        else:
            user = who.user
        return [t.as_json() for t in self.tokens.listed(None if everyone else user, revoked)]

    def _own_token(self, who, token_id: int) -> TokenInfo:
        who = self.require_user(who)
        found = self.tokens.get(token_id)
        if found is None or (found.user != who.user and not who.admin):
            # Someone else's token is none of theirs: the same answer as a missing one.
            raise Refused(404, f"No token {token_id}.")
        return found

    def token(self, who, token_id: int) -> dict:
        return self._own_token(who, token_id).as_json()

    def create_token(self, who, payload: dict) -> tuple[str, dict]:
        """(the secret, shown this once; the token as listed)."""
        who = self.require_user(who)
        fields(payload, optional={"user": str, "permission": str, "repositories": list,
                                  "projects": list, "expires": (str, type(None)),
                                  "expires_in": (str, int, float, type(None)),
                                  "note": (str, type(None))})
        owner = payload.get("user", who.user)
        if owner != who.user:
            self.require_admin(who)
        if not self.backend.exists(owner):
            raise Refused(404 if owner != who.user else 400, f"No user named {owner!r}.")
        try:
            scope = scope_of(payload.get("permission", READ),
                             payload.get("repositories", [ANYWHERE]),
                             payload.get("projects", [ANYWHERE]),
                             [r.name for r in self.access.repositories])
        except ValueError as exc:
            raise Refused(400, f"{exc}.") from None
        expires = expiry(payload.get("expires"), payload.get("expires_in"))
        secret, info = self.tokens.create(owner, scope, expires, checked_note(payload))
        _audit(who, f"made API token {info.id} ({info.prefix}...) for {owner!r}")
        return secret, info.as_json()

    def change_token(self, who, token_id: int, payload: dict) -> dict:
        """A token's note and expiry; its scope is fixed (make another token instead)."""
        found = self._own_token(who, token_id)
        fields(payload, optional={"note": (str, type(None)), "expires": (str, type(None)),
                                  "expires_in": (str, int, float, type(None))})
        if found.revoked is not None:
            raise Refused(409, f"Token {token_id} is revoked.")
        values = {}
        if "note" in payload:
            values["note"] = checked_note(payload)
        if "expires" in payload or "expires_in" in payload:
            values["expires"] = expiry(payload.get("expires"), payload.get("expires_in"))
        if values:
            self.tokens.update(token_id, **values)
            _audit(who, f"changed API token {token_id}: {', '.join(sorted(values))}")
        return self.token(who, token_id)

    def revoke_token(self, who, token_id: int) -> None:
        found = self._own_token(who, token_id)
        self.tokens.revoke(token_id)
        _audit(who, f"revoked API token {token_id} of {found.user!r}")


def _audit(who: Identity, what: str) -> None:
    """One line per change, naming who made it; never a password or a secret."""
    log.info("access: %s %s", who.user, what)


def grant_words(grant: dict) -> str:
    return f"{grant['repository']} {grant['pattern']} {grant['permission']} " \
           f"{grant['principal']}"


# --- checking what comes in ---------------------------------------------------------------


_TYPE_NAMES = {str: "a string", bool: "true or false", list: "a list", int: "a number",
               float: "a number", type(None): "null"}


def fields(payload, required: dict | None = None, optional: dict | None = None) -> None:
    """Refused (400) unless payload is an object with the required keys, nothing else
    than these, each of its type (or one of its types)."""
    required, optional = required or {}, optional or {}
    if not isinstance(payload, dict):
        raise Refused(400, "The body must be a JSON object.")
    unknown = sorted(set(payload) - set(required) - set(optional))
    if unknown:
        raise Refused(400, f"Unknown field(s): {', '.join(map(repr, unknown))} (expected "
                           f"{', '.join(sorted({*required, *optional}))}).")
    for key, kind in {**optional, **required}.items():
        if key not in payload:
            if key in required:
                raise Refused(400, f"{key!r} is required.")
            continue
        kinds = kind if isinstance(kind, tuple) else (kind,)
        value = payload[key]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise Refused(400, f"{key!r} must be "
                               f"{' or '.join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)}.")


def member_names(members: list) -> list[str]:
    if not all(isinstance(m, str) for m in members):
        raise Refused(400, "'members' must be a list of user names.")
    return members


def checked_password(password: str | None) -> str | None:
    if password is None:
        return None
    if not password or len(password) > MAX_PASSWORD or "\x00" in password:
        raise Refused(400, f"A password must have 1 to {MAX_PASSWORD} characters, no NUL.")
    return password


def checked_note(payload: dict) -> str | None:
    note = payload.get("note")
    if note is None:
        return None
    if len(note) > MAX_NOTE or "\x00" in note:
        raise Refused(400, f"'note' must have at most {MAX_NOTE} characters, no NUL.")
    try:
        note.encode("utf-8")
    except UnicodeEncodeError:
        raise Refused(400, "'note' is not valid text.") from None
    return note


def expiry(expires: str | None, expires_in=None, now: dt.datetime | None = None
           ) -> dt.datetime | None:
    """When a token expires (naive UTC): `expires` an ISO 8601 date or time (UTC unless
    it says otherwise), or `expires_in` a duration (`30d`, `12h`, seconds); neither: never."""
    now = now or utcnow()
    if expires is not None and expires_in is not None:
        raise Refused(400, "Give 'expires' or 'expires_in', not both.")
    if expires_in is not None:
        try:
            seconds = float(expires_in) if not isinstance(expires_in, str) else \
                as_duration(expires_in)
        except ValueError as exc:
            raise Refused(400, f"'expires_in': {exc}.") from None
        if not 0 < seconds <= 100 * 365 * 86400:
            raise Refused(400, "'expires_in' must be a duration from 1 second to 100 years.")
        return (now + dt.timedelta(seconds=seconds)).replace(microsecond=0)
    if expires is None:
        return None
    if not _ISO_DATE.match(expires.strip()):
        raise Refused(400, f"'expires' must be an ISO 8601 date or time "
                           f"(2030-01-31 or 2030-01-31T12:00:00Z), not {expires[:40]!r}.")
    try:
        when = dt.datetime.fromisoformat(expires.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise Refused(400, f"'expires': {exc}.") from None
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
    if when <= now:
        raise Refused(400, "'expires' is in the past.")
    return when.replace(microsecond=0)


def listed_grants(backend) -> list[dict]:
    """Every grant: the ini's (id None), then the database's."""
    base = backend.base if backend.name == "sql" else backend
    listed = [grant_json(g, None) for g in base.grants()]
    if backend.name == "sql":
        listed += [grant_json(g, i) for i, g in backend.stored_grants()]
    return listed


def grant_json(grant: Grant, grant_id: int | None) -> dict:
    return {"id": grant_id, "repository": grant.repository, "pattern": grant.pattern,
            "permission": grant.permission, "principal": grant.principal,
            "source": "ini" if grant_id is None else "database"}
