"""Error pages in the site's style, for browsers only.

error_response() (views/__init__.py) asks page_for_browser() first; packaging clients
never pass is_browser_navigation(), so their 401/403/404 bodies and headers stay exactly
as they were. An unexpected exception during a browser's page load gets the styled 500
page here; for every other request it goes on to the server as before.
"""

from __future__ import annotations

import logging

from urllib.parse import quote

from pyramid.httpexceptions import HTTPException
from pyramid.response import Response

from ...access.session import COOKIE
from . import add_page_headers, is_browser_navigation, render

log = logging.getLogger(__name__)

TITLES = {
    400: "Bad request",
    401: "Sign in required",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed here",
    500: "Something went wrong",
}
# Said instead of a bare reason phrase, which would only repeat the title.
EXPLANATIONS = {
    "Not Found": "There is nothing at this address.",
}


def page_for_browser(request, status_line: str, status: int, message: str, headers):
    """The error as a page when a browser is loading it, else None.

    A 401 page offers the sign-in form (with the way back here) instead of the browser's
    own Basic prompt: its challenge names the cookie scheme, which browsers don't prompt
    for (pip and the other clients, which never get this page, keep Basic)."""
    if not is_browser_navigation(request):
        return None
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": cookie_challenge(request)}
    return error_page(request, status_line, status, message, headers)


def cookie_challenge(request) -> str:
    return (f'Cookie realm="{request.app_config.realm}", '
            f'form-action="{request.script_name}/login", cookie-name="{COOKIE}"')


def error_page(request, status_line: str, status: int, message: str, headers=None):
    body = render(request, "errors/error.html", {
        "status": status,
        "sign_in_url": f"{request.script_name}/login?next={quote(request.path_qs, safe='/')}",
        "title": TITLES.get(status, "Error"),
        "message": EXPLANATIONS.get(message, message),
    })
    response = Response(body=body.encode(), status=status_line, content_type="text/html",
                        charset="utf-8")
    add_page_headers(response)
    response.cache_control = "no-store"
    for k, v in (headers or {}).items():
        response.headers[k] = v
    return response


def server_error(exc, request):
    """A browser's page failed: log the traceback once, show the styled 500 page.

    Registered (includeme) only for browser navigations: for anything else no
    exception view matches and the exception goes on to the WSGI server as it always did.
    """
    if isinstance(exc, HTTPException):
        return exc  # raised on purpose: its own status, as Pyramid answers it
    log.error("error serving %s %s", request.method, request.path_qs,
              exc_info=(type(exc), exc, exc.__traceback__))
    return error_page(request, "500 Internal Server Error", 500,
                      "The server could not show this page. The error has been logged.")
