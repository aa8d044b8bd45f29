"""The simple repository API: PEP 503 HTML and PEP 691 JSON from one dict."""

from __future__ import annotations

import io

from pyramid.response import Response

from .. import pages
from ..routes import repository_routes
from ..errors import NotFound
from . import error_response, missing, redirect, view_config

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


def known_accept(accept: str) -> str | None:
    """The representation an Accept header already negotiated once asks for, or None."""
    return _negotiated.get(accept)


def page_response(request, page, project: str | None = None) -> Response:
    """The page in the negotiated representation, or 304 when the client has it."""
    public = request.access.anonymous_may_read(request.repository, project)
    status, headers, app_iter = page_answer(request.environ, page, negotiate(request),
                                            request.render, public)
    return Response(status=status, headerlist=headers, app_iter=app_iter)


def page_answer(environ, page, ctype: str, render, public: bool) -> tuple[int, list, list]:
    """(status, headers, body iterable) of a page: shared by the view and the fast path.

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
    body = pages.body(page, ctype, render)
    headers.append(("Content-Type", CONTENT_TYPE_HEADER[ctype]))
    headers.append(("Content-Length", str(len(body))))
    if environ["REQUEST_METHOD"] == "HEAD":
        return 200, headers, []  # the GET's headers, Content-Length included
    wrapper = environ.get("wsgi.file_wrapper")
    app_iter = wrapper(io.BytesIO(body)) if wrapper and len(body) > _WRAP_MIN else [body]
    return 200, headers, app_iter


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


@view_config(route_name=repository_routes("simple_index"), request_method="GET",
             permission="read")
def simple_index(context, request):
    return page_response(request, request.repository.root_page(request.work, context.base))


# --- a person's browser on the index's URLs ---------------------------------------------------
#
# A browser loading /simple/<p>/ (views.ui.is_browser_navigation: Sec-Fetch-Mode or an
# Accept naming XHTML, which no packaging client sends) is sent to the project's page,
# and /simple/ to the repository's; pip, uv and poetry get the same bytes and headers as
# ever. `?format=text/html` (PEP 691's parameter) shows a browser the index page itself.

def _to_page(request, path: str) -> Response:
    response = Response(status=303, location=request.script_name + path)
    # Personal to the browser that asked: never stored for the clients.
    response.cache_control = "private, no-store"
    response.vary = ("Accept", "Sec-Fetch-Mode", "Sec-Fetch-Dest")
    return response


@view_config(route_name=repository_routes("simple_index"), request_method="GET",
             permission="read", browser_navigation=True)
def simple_index_for_browser(context, request):
    if "format" in request.GET:
        return simple_index(context, request)
    here = _here(context)
    return _to_page(request, f"{here}/" if here else "/projects/")


@view_config(route_name=repository_routes("simple_project"), request_method="GET",
             permission="read", browser_navigation=True)
def simple_project_for_browser(context, request):
    if "format" in request.GET or not context.valid:
        return simple_project(context, request)
    return _to_page(request, f"{_here(context)}/project/{context.name}/")


@view_config(route_name=repository_routes("simple_index_noslash"), request_method="GET")
def simple_index_noslash(context, request):
    return redirect(request, f"{_here(context)}/simple/")


@view_config(route_name=repository_routes("simple_project"), request_method="GET",
             permission="read")
@view_config(route_name=repository_routes("hatch_simple"), request_method="GET",
             permission="read")
def simple_project(context, request):
    if not context.valid:
        return error_response(request, 404, "Not Found")
    if context.raw_name != context.name:
        return redirect(request, f"{_here(context)}/simple/{context.name}/")
    try:
        page = request.repository.project_page(request.work, context.name, context.base)
    except NotFound as exc:
        return missing(request, exc, f"No project named {context.name!r}.")
    if page is None:
        return missing(request, None, f"No project named {context.name!r}.")
    return page_response(request, page, context.name)


@view_config(route_name=repository_routes("simple_project_noslash"), request_method="GET")
def simple_project_noslash(context, request):
    if not context.valid:
        return error_response(request, 404, "Not Found")
    return redirect(request, f"{_here(context)}/simple/{context.name}/")


def _here(context) -> str:
    """The repository's path prefix under the app ("" for the classic URLs)."""
    return context.base[len(context.request.script_name):]
