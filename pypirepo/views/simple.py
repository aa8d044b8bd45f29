"""The simple repository API: PEP 503 HTML and PEP 691 JSON from one dict."""

from __future__ import annotations

import io

from pyramid.response import Response

from .. import names
from ..request import INDEX_SERVICE_KEY, index_service
from ..routes import READS
from . import error_response, redirect, view_config
from .upstream import fallback_page

HTML = "text/html"
V1_HTML = "application/vnd.pypi.simple.v1+html"
V1_JSON = "application/vnd.pypi.simple.v1+json"
# Offer order breaks ties: plain HTML first, as warehouse does; `latest` maps to v1.
OFFERS = [HTML, V1_HTML, V1_JSON,
          "application/vnd.pypi.simple.latest+html", "application/vnd.pypi.simple.latest+json"]
ANSWER = {o: o for o in (HTML, V1_HTML, V1_JSON)}
ANSWER["application/vnd.pypi.simple.latest+html"] = V1_HTML
ANSWER["application/vnd.pypi.simple.latest+json"] = V1_JSON

_negotiated: dict[str, str] = {}


def negotiate(request) -> str:
    environ = request.environ
    if environ.get("QUERY_STRING"):
        fmt = request.GET.get("format")
        if fmt in ANSWER:  # PEP 691's optional URL parameter overrides Accept
            return ANSWER[fmt]
    accept = environ.get("HTTP_ACCEPT")
    if not accept:
        return HTML
    # Clients send the same few Accept headers over and over; parse each once.
    found = _negotiated.get(accept)
    if found is None:
        offers = request.accept.acceptable_offers(OFFERS)
        found = ANSWER[offers[0][0]] if offers else HTML
        if len(_negotiated) < 256:
            _negotiated[accept] = found
    return found


CONTENT_TYPE_HEADER = {HTML: HTML + "; charset=utf-8", V1_HTML: V1_HTML + "; charset=utf-8",
                       V1_JSON: V1_JSON}
# Bodies above this go out through the server's wsgi.file_wrapper: waitress then sends
# from the page's bytes instead of first copying them into its output buffer, and the
# root page (245 KiB for 5,000 projects) serves 30% more requests per second.
_WRAP_MIN = 8192
REVALIDATE = "max-age=0, must-revalidate"


def page_response(request, page) -> Response:
    """The page in the negotiated representation, or 304 when the client has it."""
    status, headers, app_iter = page_answer(request.environ, page, negotiate(request),
                                            request.index, request.registry.public_read)
    return Response(status=status, headerlist=headers, app_iter=app_iter)


def page_answer(environ, page, ctype: str, index, public: bool) -> tuple[int, list, list]:
    """(status, headers, body iterable) of a page: shared by the view and CachedPages.

    Headers are written as one list: WebOb's header properties and conditional-response
    machinery cost more than the rest of a cached page together.
    """
    # The ETag names the representation too, since one URL serves several.
    etag = page.etag[:-1] + ("-j" if ctype == V1_JSON else "-h") + '"'
    headers = [
        ("ETag", etag),
        ("Cache-Control", REVALIDATE if public else REVALIDATE + ", private"),
        ("Vary", "Accept"),
    ]
    if _matches(environ.get("HTTP_IF_NONE_MATCH"), etag):
        return 304, headers, []
    body = index.body(page, ctype)
    headers.append(("Content-Type", CONTENT_TYPE_HEADER[ctype]))
    headers.append(("Content-Length", str(len(body))))
    if environ["REQUEST_METHOD"] == "HEAD":
        return 200, headers, []  # the GET's headers, Content-Length included
    wrapper = environ.get("wsgi.file_wrapper")
    app_iter = wrapper(io.BytesIO(body)) if wrapper and len(body) > _WRAP_MIN else [body]
    return 200, headers, app_iter


class CachedPages:
    """WSGI middleware: index pages for anonymous readers without Pyramid's router.

    The simple pages are most of an index's traffic, and a cached one costs ~15 us of our
    own work against ~50 us through the router, security policy and view machinery. This
    answers only what it can answer exactly as the views would, with the same services:
    a GET or HEAD of /simple/ or of /simple/<normalized name>/, no query string, no
    Authorization header, an index everyone may read, an Accept header already
    negotiated once, and a page the fallback has nothing to add to (FallbackService.
    local_page, which never asks the upstream). Anything else, a missing project
    included, goes to Pyramid untouched.
    """

    def __init__(self, app, registry):
        self.app = app
        self.registry = registry
        # Read access is one rule for the whole index today; when it can differ per
        # project, this must ask per project too.
        self.open = registry.access.open_to_everyone("read", None)

    def __call__(self, environ, start_response):
        if self.open and environ["REQUEST_METHOD"] in READS \
                and environ.get("PATH_INFO", "").startswith("/simple/") \
                and "HTTP_AUTHORIZATION" not in environ and not environ.get("QUERY_STRING"):
            answer = self._answer(environ)
            if answer is not None:
                status, headers, app_iter = answer
                start_response(_STATUS[status], headers)
                return app_iter
        return self.app(environ, start_response)

    def _answer(self, environ):
        accept = environ.get("HTTP_ACCEPT")
        ctype = _negotiated.get(accept) if accept else HTML
        if ctype is None:
            return None  # a new Accept header: the view negotiates it (and remembers)
        name = environ["PATH_INFO"][8:]
        if name and (not name.endswith("/") or "/" in name[:-1]):
            return None
        name = name[:-1]
        if name and (not names.is_valid_project_name(name) or names.normalize(name) != name):
            return None  # the view answers 404 or redirects
        registry = self.registry
        index = index_service(registry)
        try:
            prefix = environ.get("SCRIPT_NAME", "")
            if name:
                decided, page = registry.fallback.local_page(index, name, prefix)
                if not decided or page is None:
                    # The view takes it from here with this service, which remembers the
                    # project's serial: the request asks the database once, not twice.
                    environ[INDEX_SERVICE_KEY] = index
                    return None
            else:
                page = index.root_page(prefix)
            return page_answer(environ, page, ctype, index, registry.public_read)
        finally:
            index.close()  # its session, if one was opened; a handed-over one reopens it


_STATUS = {200: "200 OK", 304: "304 Not Modified"}


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


@view_config(route_name="simple_index", request_method="GET", permission="read")
def simple_index(request):
    return page_response(request, request.index.root_page(request.script_name))


@view_config(route_name="simple_index_noslash", request_method="GET")
def simple_index_noslash(request):
    return redirect(request, "/simple/")


@view_config(route_name="simple_project", request_method="GET", permission="read")
@view_config(route_name="hatch_simple", request_method="GET", permission="read")
def simple_project(context, request):
    if not context.valid:
        return error_response(request, 404, "Not Found")
    if context.raw_name != context.name:
        return redirect(request, f"/simple/{context.name}/")
    # What we hold, or what the fallback makes of it (which reads our page only when it
    # is the answer, so an upstream-only project builds one page, not two).
    page = fallback_page(request, context.name)
    if page is None:
        return error_response(request, 404, f"No project named {context.name!r}.")
    return page_response(request, page)


@view_config(route_name="simple_project_noslash", request_method="GET")
def simple_project_noslash(context, request):
    if not context.valid:
        return error_response(request, 404, "Not Found")
    return redirect(request, f"/simple/{context.name}/")
