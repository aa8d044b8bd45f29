"""Browser sessions: the signed session cookie, its CSRF token, and the trusted proxy's
user header.

Who a request is (request.identity) comes, in this order, from its Authorization header
(pypirepo.access.identity: Basic, API tokens), from a trusted reverse proxy's user header
(`auth.remote_user_header`, only from `auth.remote_user_proxies`), or from the session
cookie set by the login form. The last two are ambient: a browser sends them with any
request a page makes, so every state-changing request they authenticate must also carry
the session's CSRF token (csrf_tween). Requests with an Authorization header (the
publishing clients) are exempt: a browser never adds one to another site's form.

The cookie is stateless, as Pyramid's SignedCookieSessionFactory is: a JSON payload
(user, a random session id, when it was issued, a stamp of the user's password hash)
with an HMAC-SHA256 of it, under a key derived from `auth.session_secret`. So:

- it holds for `auth.session_max_age` after the login, whatever is done with it, on every
  instance that shares the secret; nothing is stored on the server;
- the session id is new at each login (a cookie set before never becomes a signed-in
  one: the login form's token lives in a cookie of its own, scoped to /login);
- a user removed since is anonymous, and a password change ends every session of the
  user (the stamp no longer matches), which is also how "log out everywhere" is done;
- logging out deletes the cookie from the browser; a copy taken before (it is HttpOnly,
  so no script can read it) stays valid until it expires, the password changes or the
  secret does.

The CSRF token is an HMAC of the session id: it differs for every session (a token from
another session, or from before the login, is refused) and needs no storage.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import Refused
from ..fallback.config import ENVIRONMENTS
from ..settings import ConfigError, as_duration, as_list, as_str, one_of
from .model import USER_RE

log = logging.getLogger(__name__)

COOKIE = "pypirepo_session"
# The login form's own cookie (path /login): the token of a form shown before anyone is
# signed in. It carries no user, ever.
LOGIN_COOKIE = "pypirepo_login"
SESSION_KEY = "pypirepo.session"  # the request's session, read once
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "HTTP_X_CSRF_TOKEN"  # X-CSRF-Token
# Set by pypirepo.hardening before waitress applies a trusted proxy's X-Forwarded-For to
# REMOTE_ADDR: the address of the peer that sent the request.
PEER_ADDR = "pypirepo.peer_addr"
AMBIENT = ("session", "remote")  # identities a browser sends on its own
MIN_SECRET = 32
MAX_FORM = 64 * 1024  # bytes: a sign-in or account form's body, at most
SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))
_SKEW = 300  # seconds a cookie may seem to come from the future (clocks of instances)
_LOGGED_MAX = 100  # distinct names and addresses said once in the log, at most

HOW_TO_MAKE_A_SECRET = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


@dataclass(frozen=True)
class Session:
    user: str | None  # None: the login form's cookie
    sid: str
    issued: int
    stamp: str = ""


class Signer:
    """HMAC-SHA256 under keys derived from one secret, one key per purpose."""

    def __init__(self, secret: bytes):
        self._secret = secret
        self._keys: dict[str, bytes] = {}

    def mac(self, purpose: str, text: str) -> str:
        key = self._keys.get(purpose)
        if key is None:
            key = self._keys[purpose] = hmac.digest(
                self._secret, b"pypirepo/" + purpose.encode(), "sha256")
        digest = hmac.digest(key, text.encode(), "sha256")
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def sign(self, purpose: str, data: dict) -> str:
        payload = base64.urlsafe_b64encode(
            json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()
        return f"{payload}.{self.mac(purpose, payload)}"

    def unsign(self, purpose: str, value: str) -> dict | None:
        payload, _, mac = value.partition(".")
        if not mac or not hmac.compare_digest(mac.encode(), self.mac(purpose, payload).encode()):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (binascii.Error, ValueError):
            return None
        return data if isinstance(data, dict) else None


def equal(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison of a token sent with one expected."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


class Sessions:
    """The session cookie, CSRF tokens and the trusted proxy's header (ISessions)."""

    def __init__(self, secret: bytes, max_age: float = 12 * 3600, *,
                 remote_user_header: str | None = None, remote_user_proxies=(),
                 clock=time.time):
        self.signer = Signer(secret)
        self.max_age = int(max_age)
        self.remote_key = None if not remote_user_header else \
            "HTTP_" + remote_user_header.upper().replace("-", "_")
        self.remote_header = remote_user_header
        self.remote_proxies = tuple(remote_user_proxies)
        self.clock = clock
        self._logged: set[str] = set()
        self._log_lock = threading.Lock()

    @classmethod
    def from_settings(cls, s) -> Sessions:
        production = s.get_value("pypirepo.environment", one_of(*ENVIRONMENTS),
                                 "development") == "production"
        max_age = s.get_value("auth.session_max_age", as_duration, 12 * 3600.0)
        if max_age < 60:
            raise ConfigError("auth.session_max_age", "expected 1m or more")
        header = s.get_value("auth.remote_user_header", as_str, None)
        proxies = []
        if header is not None:
            if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", header):
                raise ConfigError("auth.remote_user_header",
                                  f"{header!r} is not a header name (letters, digits, -)")
            words = s.get_value("auth.remote_user_proxies", as_list, [])
            if not words:
                raise ConfigError("auth.remote_user_proxies", "is required with "
                                  "auth.remote_user_header: the addresses (CIDRs) of the "
                                  "proxies whose header is believed")
            for word in words:
                try:
                    proxies.append(ipaddress.ip_network(word, strict=False))
                except ValueError:
                    raise ConfigError("auth.remote_user_proxies",
                                      f"{word!r} is not an address or CIDR") from None
        return cls(session_secret(s, production), max_age,
                   remote_user_header=header, remote_user_proxies=proxies)

    # --- the session cookie ----------------------------------------------------------------

    def read(self, request) -> Session | None:
        """The signed-in session the request's cookie holds, if valid and not expired."""
        environ = request.environ
        if "HTTP_COOKIE" not in environ:
            return None
        if SESSION_KEY not in environ:
            value = request.cookies.get(COOKIE)
            environ[SESSION_KEY] = self._load("session", value) if value else None
        return environ[SESSION_KEY]

    def _load(self, purpose: str, value: str) -> Session | None:
        data = self.signer.unsign(purpose, value)
        if data is None:
            return None
        user, sid, issued = data.get("u"), data.get("i"), data.get("t")
        if not isinstance(sid, str) or not isinstance(issued, int) \
                or not isinstance(user, (str, type(None))):
            return None
        now = self.clock()
        if not (now - self.max_age < issued <= now + _SKEW):
            return None  # expired (or from a clock far ahead)
        return Session(user, sid, issued, str(data.get("s", "")))

    def stamp(self, access, user: str) -> str:
        """What a session remembers of the user's password: a new password (or hash)
        ends it. A backend without password_hash() gives sessions no stamp."""
        get = getattr(access.backend, "password_hash", None)
        hashed = get(user) if get is not None else None
        return self.signer.mac("stamp", f"{user}\0{hashed or ''}")[:22]

    def session_identity(self, request):
        session = self.read(request)
        if session is None or session.user is None:
            return None
        access = request.access
        identity = access.identity_of(session.user, via="session")
        if identity is None or not equal(session.stamp, self.stamp(access, session.user)):
            return None
        return identity

    def login(self, request, response, user: str) -> Session:
        """Sign the browser in as user: a new session (new id) in a new cookie, and the
        login form's cookie gone."""
        session = Session(user, secrets.token_urlsafe(18), int(self.clock()),
                          self.stamp(request.access, user))
        self._set(request, response, COOKIE, self.signer.sign(
            "session", {"u": user, "i": session.sid, "t": session.issued, "s": session.stamp}))
        self._delete(request, response, LOGIN_COOKIE, login_path(request))
        return session

    def logout(self, request, response) -> None:
        self._delete(request, response, COOKIE)

    def _set(self, request, response, name, value, path=None):
        response.set_cookie(name, value, max_age=self.max_age, path=path or cookie_path(request),
                            secure=request.scheme == "https", httponly=True, samesite="lax")

    def _delete(self, request, response, name, path=None):
        response.set_cookie(name, "", max_age=0, path=path or cookie_path(request),
                            expires=0, secure=request.scheme == "https", httponly=True,
                            samesite="lax")

    # --- the trusted proxy's header ----------------------------------------------------------

    def remote_identity(self, request):
        """The user a trusted proxy names in its header (who must exist here)."""
        environ = request.environ
        name = environ.get(self.remote_key) if self.remote_key else None
        if not name:
            return None
        peer = environ.get(PEER_ADDR) or environ.get("REMOTE_ADDR") or ""
        if not self._trusted(peer):
            self._once(f"peer {peer}", "ignored the %s header from %s: not one of "
                       "auth.remote_user_proxies", self.remote_header, peer[:64])
            return None
        name = name.strip()
        identity = request.access.identity_of(name, via="remote") \
            if USER_RE.match(name) else None
        if identity is None:
            self._once(f"user {name[:64]}", "the proxy's %s header names %r, who has no "
                       "account here: treated as anonymous", self.remote_header, name[:64])
        return identity

    def _trusted(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer.split("%", 1)[0])
        except ValueError:
            return False
        return any(address in network for network in self.remote_proxies)

    def _once(self, key: str, message: str, *args) -> None:
        with self._log_lock:
            if key in self._logged or len(self._logged) >= _LOGGED_MAX:
                return
            self._logged.add(key)
        log.warning(message, *args)

    # --- who the request is, when it has no Authorization header ---------------------------

    def identify(self, request):
        if self.remote_key is not None:
            identity = self.remote_identity(request)
            if identity is not None:
                return identity
        return self.session_identity(request)

    # --- CSRF -------------------------------------------------------------------------------

    def csrf_token(self, request) -> str | None:
        """The token the request's forms must carry: its signed-in session's, its proxy
        user's, or (nobody signed in) the login form's; None: none needed."""
        identity = request.identity
        if identity is not None and identity.via == "remote":
            # The proxy holds the session; a per-user token still can't be read by
            # another site's page.
            return self.signer.mac("csrf-remote", identity.user)
        if identity is not None and identity.via == "session":
            session = self.read(request)
            return self.signer.mac("csrf", session.sid) if session else None
        return None

    def login_form_token(self, request, response) -> str:
        """The token for a login form shown to nobody signed in: its cookie's, made now
        when the browser has none (or an expired one)."""
        session = self.login_session(request)
        if session is None:
            session = Session(None, secrets.token_urlsafe(18), int(self.clock()))
            self._set(request, response, LOGIN_COOKIE,
                      self.signer.sign("login", {"i": session.sid, "t": session.issued}),
                      path=login_path(request))
            request.environ["pypirepo.login_session"] = session
        return self.signer.mac("csrf-login", session.sid)

    def login_session(self, request) -> Session | None:
        made = request.environ.get("pypirepo.login_session")
        if made is not None:
            return made
        value = request.cookies.get(LOGIN_COOKIE) if "HTTP_COOKIE" in request.environ else None
        return self._load("login", value) if value else None

    def login_form_ok(self, request) -> bool:
        session = self.login_session(request)
        return session is not None and equal(
            small_form(request).get(CSRF_FIELD), self.signer.mac("csrf-login", session.sid))

    def check_csrf(self, request) -> None:
        """Refused (403) for a state-changing request a signed-in browser sends without
        its session's token. Explicit credentials (an Authorization header) need none."""
        environ = request.environ
        if "HTTP_AUTHORIZATION" in environ or ("HTTP_COOKIE" not in environ and (
                self.remote_key is None or self.remote_key not in environ)):
            return
        identity = request.identity
        if identity is None or identity.via not in AMBIENT:
            return
        given = submitted_token(request)
        if not given:
            raise Refused(403, "CSRF token missing: a signed-in browser's request must "
                          f"carry the {CSRF_FIELD} form field or the X-CSRF-Token header. "
                          "Reload the page and try again.")
        if not equal(given, self.csrf_token(request)):
            raise Refused(403, "CSRF token invalid: it does not belong to this session. "
                          "Reload the page and try again.")


def submitted_token(request) -> str | None:
    """The CSRF token sent: the X-CSRF-Token header, or the form's csrf_token field. A
    multipart form (an upload) carries it in its action URL's query instead: its body is
    streamed to disk by the upload's own parser and is not read before the view."""
    header = request.environ.get(CSRF_HEADER)
    if header:
        return header
    ctype = request.environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        return small_form(request).get(CSRF_FIELD)
    if ctype == "multipart/form-data":
        return request.GET.get(CSRF_FIELD)
    return None


def small_form(request):
    """The fields of a form these pages post (a sign-in, a password, a token's scope):
    Refused (413) past MAX_FORM, before the body is read, as WebOb would read a form's
    body whole into memory. A signed-in browser (or anyone sending a cookie) gets past
    the anonymous body limit that is checked before a body is read (security.BodyGate)."""
    if (request.content_length or 0) > MAX_FORM:
        raise Refused(413, f"This form's body is too large: at most {MAX_FORM} bytes.")
    return request.POST


def cookie_path(request) -> str:
    return request.script_name or "/"


def login_path(request) -> str:
    return request.script_name + "/login"


def session_secret(s, production: bool) -> bytes:
    """auth.session_secret; in development without one, a secret made once and kept in
    auth.session_secret_file (or, without that either, one for this process only)."""
    given = s.get_value("auth.session_secret", as_str, None)
    if given is not None:
        if len(given) < MIN_SECRET:
            raise ConfigError("auth.session_secret", f"is too short: use at least {MIN_SECRET}"
                              f" random characters (e.g. from `{HOW_TO_MAKE_A_SECRET}`)")
        return given.encode()
    if production:
        raise ConfigError("auth.session_secret", "is required in production "
                          "(pypirepo.environment = production): set it in the ini or as "
                          f"PYPIREPO_AUTH_SESSION_SECRET, at least {MIN_SECRET} random "
                          f"characters (e.g. from `{HOW_TO_MAKE_A_SECRET}`)")
    path = s.get_value("auth.session_secret_file", as_str, None)
    if path is None:
        log.info("auth.session_secret is not set: browser sessions end when the server "
                 "restarts")
        return secrets.token_bytes(32)
    return kept_secret(Path(path))


def kept_secret(path: Path) -> bytes:
    """The secret in path, made (mode 600) at the first start."""
    for _attempt in range(2):
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ConfigError("auth.session_secret_file", f"cannot read {path}: "
                              f"{exc.strerror}") from None
        else:
            if len(text) < MIN_SECRET:
                raise ConfigError("auth.session_secret_file", f"{path} holds no secret of "
                                  f"{MIN_SECRET} characters or more; delete it, and one is "
                                  "made at the next start")
            return text.encode()
        text = secrets.token_urlsafe(32)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            time.sleep(0.1)  # another process is writing it: read theirs
            continue
        except OSError as exc:
            raise ConfigError("auth.session_secret_file", f"cannot write {path}: "
                              f"{exc.strerror}") from None
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
        return text.encode()
    raise ConfigError("auth.session_secret_file", f"{path} is being written by another "
                      "process; start again")


def csrf_tween(handler, registry):
    """Below the cross-site guard (pypirepo.security): a signed-in browser's write also
    needs its session's token."""
    from ..interfaces import ISessions

    sessions = registry.getUtility(ISessions)

    def check_csrf(request):
        if request.environ["REQUEST_METHOD"] not in SAFE_METHODS:
            sessions.check_csrf(request)
        return handler(request)

    return check_csrf


def includeme(config):
    from pyramid.tweens import MAIN

    from ..interfaces import ISessions, ISettings

    settings = config.registry.getUtility(ISettings)
    config.registry.registerUtility(Sessions.from_settings(settings), ISessions)
    config.add_tween("pypirepo.access.session.csrf_tween", over=MAIN,
                     under="pypirepo.security.cross_site_tween")
