"""One-time messages shown on the page a form's action redirects to ("Yanked demo 1.0").

The server keeps no session state (access.session), so the message travels in a short-
lived cookie signed with the session secret: only this server can have written it, so a
link can never make the site say something it did not. The next page rendered shows it
and deletes the cookie.
"""

from __future__ import annotations

import time

from ...access.session import cookie_path

COOKIE = "pypirepo_flash"
MAX_AGE = 120  # seconds: the redirect is followed at once; a stale message is dropped
MAX_TEXT = 600
KINDS = ("info", "success", "warning", "error")


def set_flash(request, response, kind: str, text: str) -> None:
    value = request.sessions.signer.sign("flash", {"k": kind, "m": text[:MAX_TEXT],
                                                   "t": int(time.time())})
    response.set_cookie(COOKIE, value, max_age=MAX_AGE, path=cookie_path(request),
                        secure=request.scheme == "https", httponly=True, samesite="lax")


def take_flashes(request) -> list[tuple[str, str]]:
    """The message the browser brought, if any (and its cookie deleted on this page's
    response); [] without one, at the cost of a string search."""
    if COOKIE + "=" not in request.environ.get("HTTP_COOKIE", ""):
        return []
    value = request.cookies.get(COOKIE)
    request.response.set_cookie(COOKIE, "", max_age=0, expires=0, path=cookie_path(request),
                                secure=request.scheme == "https", httponly=True,
                                samesite="lax")
    data = request.sessions.signer.unsign("flash", value) if value else None
    if not data or data.get("k") not in KINDS or not isinstance(data.get("m"), str) \
            or not isinstance(data.get("t"), int) or time.time() - data["t"] > MAX_AGE:
        return []
    return [(data["k"], data["m"])]
