"""The web UI: pages for browsers, rendered with the shared Jinja2 environment.

A UI view returns a dict and names its template as the renderer
(`@view_config(route_name=..., renderer="ui/page.html")`); the renderer adds what every
page needs (site name, the signed-in user, asset URLs) and the security headers. The
simple index and the JSON and upload APIs never come through here: their bytes and
headers stay as they are.
"""

from __future__ import annotations

from ...interfaces import IStaticAssets

from .assets import StaticAssets
from .flash import take_flashes

# No inline script or style anywhere: every template is written for this policy.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
)
# Pages show who is signed in: never kept by a shared cache, always revalidated.
PAGE_CACHE_CONTROL = "private, no-cache"


def is_browser_navigation(request) -> bool:
    """Whether a person's browser is loading this URL as a page.

    Browsers say so with Sec-Fetch-Mode/Sec-Fetch-Dest, and older ones with an Accept
    that names application/xhtml+xml next to text/html. pip, uv, poetry, twine and the
    rest send Accept: text/html for the simple pages too, but neither of those, so they
    keep getting the answers they parse.
    """
    environ = request.environ
    if environ.get("HTTP_SEC_FETCH_MODE") == "navigate" \
            or environ.get("HTTP_SEC_FETCH_DEST") == "document":
        return True
    accept = environ.get("HTTP_ACCEPT", "")
    if "application/xhtml+xml" not in accept:
        return False
    offers = request.accept.acceptable_offers(["text/html", "application/json",
                                               "text/plain"])
    return bool(offers) and offers[0][0] == "text/html"


def page_globals(request) -> dict:
    """What the layout needs on every page."""
    from .admin import admin_nav_url  # imported here: it imports pypirepo.views, which
    # imports this package first

    prefix = request.script_name
    assets: StaticAssets = request.registry.getUtility(IStaticAssets)
    return {
        "request": request,
        "site_name": request.app_config.realm,
        "home_url": prefix + "/",
        "search_url": prefix + "/search",
        "login_url": prefix + "/login",
        "logout_url": prefix + "/logout",
        "account_url": prefix + "/account",
        "user": request.pypirepo_user,
        # How the user signed in: only a session can be signed out of here.
        "signed_in_via": request.identity.via if request.identity is not None else None,
        # The token every form that changes something carries (access.session).
        "csrf_token": request.sessions.csrf_token(request) if request.sessions else None,
        "static_url": lambda name: assets.url(prefix, name),
        # The header's link to the administration pages, for whoever may use them.
        "admin_nav_url": admin_nav_url(request),
    }


def render(request, template: str, data: dict) -> str:
    return request.render(template, {**page_globals(request), **data})


def add_page_headers(response) -> None:
    for name, value in SECURITY_HEADERS:
        response.headers[name] = value
    if "Cache-Control" not in response.headers:  # a page that shows a secret says no-store
        response.cache_control = PAGE_CACHE_CONTROL


class PageRenderer:
    """The Pyramid renderer for `*.html` templates: a UI page with its headers."""

    def __init__(self, info):
        self.template = info.name

    def __call__(self, value, system):
        request = system["request"]
        response = request.response
        response.content_type = "text/html"
        response.charset = "utf-8"
        add_page_headers(response)
        flashes = take_flashes(request) if request.sessions else []
        if flashes:  # a message from the form whose action led here (views/ui/flash.py)
            value = {**value, "flash_messages": flashes + list(value.get("flash_messages")
                                                               or ())}
        return render(request, self.template, value)


class BrowserNavigation:
    """View predicate `browser_navigation=True`: only for a browser loading a page."""

    def __init__(self, value, config):
        self.value = bool(value)

    def text(self):
        return f"browser_navigation = {self.value}"

    phash = text

    def __call__(self, context, request):
        return is_browser_navigation(request) == self.value


def includeme(config):
    from . import admin  # noqa: F401 - the administration pages declare their views
    from ...interfaces import IDatabase, IUIPages
    from ...pages.ui import UIPages
    from . import account, errors, home, manage, static  # noqa: F401 - they declare their views

    config.registry.registerUtility(StaticAssets.load(), IStaticAssets)
    config.registry.registerUtility(UIPages(config.registry.getUtility(IDatabase)), IUIPages)
    config.add_renderer(".html", PageRenderer)
    config.add_view_predicate("browser_navigation", BrowserNavigation)
    config.add_exception_view(errors.server_error, context=Exception, browser_navigation=True)
