"""The Pyramid security policy (identity resolved once per request, by access.identity); and
the guard that keeps a browser from writing here on another site's behalf."""

from __future__ import annotations

from urllib.parse import urlsplit

from pyramid.interfaces import ISecurityPolicy
from zope.interface import implementer

from .errors import Refused


@implementer(ISecurityPolicy)
class SecurityPolicy:
    """Pyramid's policy: the identity the request resolved once, and the access service's
    decision for the repository the URL names.

    A route is checked for the right in its repository as a whole (`may_somewhere`: an
    upload's project is not known before its form is read; a listing shows what may be
    read of it); the repository then checks the project itself (Work.require), so a
    project the caller may not read answers exactly as a missing one.
    """

    def __init__(self, access):
        self.access = access

    def identity(self, request):
        return request.identity

    def authenticated_userid(self, request):
        return request.pypirepo_user

    def permits(self, request, context, permission):
        if request.pypirepo_bad_credentials:
            return False
        repository = getattr(context, "repository", None)
        if repository is None:
            return self.access.may(request.identity, request.repositories.default, None,
                                   permission)
        return self.access.may_somewhere(request.identity, repository, permission)

    def remember(self, request, userid, **kw):
        return []

    def forget(self, request, **kw):
        return []


# RFC 9110's safe methods that reach an app (TRACE never does): they change nothing, so
# a cross-site one can do no harm, and they are never looked at.
SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))
# What Sec-Fetch-Site says of a request its own origin made, or a user typed in.
_OWN_SITE = frozenset(("same-origin", "none"))
_DEFAULT_PORTS = (":80", ":443")


class CrossSiteGuard:
    """Refuses state-changing requests that a browser sends from another origin's page.

    A browser that holds a writer's Basic credentials (or, later, a session) sends them
    with any form or fetch() a hostile page makes. Browsers say where a request comes
    from (Sec-Fetch-Site; Origin on every cross-origin POST, PUT, PATCH and DELETE), and
    the publishing clients (twine, uv, poetry, pdm, hatch, curl) send neither header, so:

    - Sec-Fetch-Site present: only `same-origin` or `none` (typed in, bookmarked) pass;
    - else an Origin header must name this server: the request's own Host, as the app
      builds its URLs from it (waitress has already applied X-Forwarded-Host when the
      proxy is trusted), or one of `trusted_origins`; `Origin: null` never does;
    - neither header: not a browser's cross-origin request, it passes.

    Writes to the JSON API also need `Content-Type: application/json` (or no body at all),
    which a page can only send cross-origin after a CORS preflight that this server never
    grants: the check holds for an old browser that sends neither header. Safe methods
    pass at the cost of one set lookup (cached index pages never get here: CachedPages
    answers them).
    A signed-in browser's writes also need its session's CSRF token (access.session's
    tween, right below this one): that adds to this check, it does not replace it.
    """

    def __init__(self, handler, trusted_origins=(), json_prefixes=()):
        self.handler = handler
        # Origins compared as browsers send them: scheme://host[:port], lower case.
        self.trusted = frozenset(o.rstrip("/").lower() for o in trusted_origins)
        self.json_prefixes = tuple(json_prefixes)

    def __call__(self, request):
        environ = request.environ
        if environ["REQUEST_METHOD"] not in SAFE_METHODS:
            self.check(environ)
        return self.handler(request)

    def check(self, environ) -> None:
        """Raise Refused for a cross-site write or a JSON call that isn't JSON."""
        origin = environ.get("HTTP_ORIGIN")
        site = environ.get("HTTP_SEC_FETCH_SITE")
        if site is not None and site not in _OWN_SITE and not self._trusted(origin):
            raise Refused(403, f"Cross-site request refused: Sec-Fetch-Site is "
                                      f"{site[:40]!r}; writes must come from this site.")
        if site is None and origin is not None and not self.same_origin(origin, environ):
            raise Refused(403, f"Cross-site request refused: Origin {origin[:100]!r} "
                                      "is not this server; writes must come from this site.")
        if environ["REQUEST_METHOD"] != "DELETE" \
                and environ.get("PATH_INFO", "").startswith(self.json_prefixes):
            ctype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
            # No type and no body (`curl -X POST .../unyank`) is no form: a browser that
            # sends a request without Content-Type sends Origin with it.
            bodiless = not ctype and environ.get("CONTENT_LENGTH", "0") in ("0", "") \
                and "HTTP_TRANSFER_ENCODING" not in environ
            if ctype != "application/json" and not bodiless:
                raise Refused(415, "This API takes Content-Type: application/json "
                                          f"(got {ctype[:60] or 'none'!r}).")

    def same_origin(self, origin: str, environ) -> bool:
        if self._trusted(origin):
            return True
        try:
            netloc = urlsplit(origin).netloc
        except ValueError:
            return False  # not a URL at all
        # The host only, as Go's CrossOriginProtection does: behind a TLS proxy that
        # doesn't forward the scheme, the app sees http while the browser says https.
        return bool(netloc) and _without_default_port(netloc) == _request_host(environ)

    def _trusted(self, origin: str | None) -> bool:
        return origin is not None and origin.lower() in self.trusted


def _request_host(environ) -> str:
    """host[:port] as WebOb's request.host (and so every URL the app builds) has it."""
    host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
    return _without_default_port(host)


def _without_default_port(host: str) -> str:
    host = host.lower()
    for port in _DEFAULT_PORTS:
        if host.endswith(port):
            return host[: -len(port)]
    return host


# An anonymous request body above this, where anonymous users may not write, is refused
# once its headers are in: the answer is a 401 whatever the body says, and a body this
# small never leaves waitress' memory buffer for its disk spool.
ANONYMOUS_BODY_LIMIT = 64 * 1024


class BodyGate:
    """What a request's headers alone decide, before its body is read.

    hardening.py calls it as soon as a request with a body has its headers in (waitress
    would otherwise read and spool the whole body first); everything else is decided by
    the views as usual. The answer is (status, message, headers) or None to go on. Cheap,
    without I/O: it runs on the server's main loop.
    """

    def __init__(self, access, max_upload_size: int, realm: str):
        from .upload import FORM_ALLOWANCE

        self.max_upload_size = max_upload_size
        self.max_body = max_upload_size + FORM_ALLOWANCE
        self.anonymous_writes = access.anonymous_may_write()
        self.challenge = (("WWW-Authenticate", f'Basic realm="{realm}"'),)

    def __call__(self, method: str, headers, content_length: int | None):
        """headers as waitress keeps them: upper case, `_` for `-`; content_length None
        for a chunked body."""
        if content_length is not None and content_length > self.max_body:
            return 413, f"File too large. Limit is {self.max_upload_size} bytes.", ()
        if self.anonymous_writes or method in SAFE_METHODS \
                or "AUTHORIZATION" in headers or "COOKIE" in headers:
            return None
        # Anonymous, where that can't write: a 401 whatever the body. Asked now when the
        # client waits for `100 Continue` before sending, or when the body is larger than
        # the app would take in to say so.
        if content_length is None or content_length > ANONYMOUS_BODY_LIMIT \
                or headers.get("EXPECT", "").lower() == "100-continue":
            return 401, "Authentication required.", self.challenge
        return None


def cross_site_tween(handler, registry):
    from .routes import JSON_API_PREFIXES

    # The address clients are told to use (pypirepo.public_url) is this server too, also
    # when the proxy in front does not pass the Host it was asked for.
    from .interfaces import IAppConfig

    public = registry.getUtility(IAppConfig).public_url
    trusted = [_origin_of(public)] if public else []
    return CrossSiteGuard(handler, trusted_origins=trusted, json_prefixes=JSON_API_PREFIXES)


def _origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, as a browser's Origin header names it."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def includeme(config):
    from pyramid.tweens import MAIN

    from .interfaces import IAccess, IAppConfig, IBodyGate, IRepositories
    from .request import Request

    registry = config.registry
    access = registry.getUtility(IAccess)
    config.set_request_factory(Request)
    config.set_security_policy(SecurityPolicy(access))
    # hardening.py asks it before each body (through the app, fastpath.FastPath).
    registry.registerUtility(BodyGate(access, registry.getUtility(IRepositories).max_upload_size,
                                      registry.getUtility(IAppConfig).realm), IBodyGate)
    # Right above the router, below the exception view tween, so a refusal is rendered
    # like every other error; before routing, so nothing else runs for it.
    config.add_tween("pypirepo.security.cross_site_tween", over=MAIN)
