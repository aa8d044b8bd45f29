"""The home page and project search."""

from __future__ import annotations

from urllib.parse import urlsplit

from ...search import search_projects
from .. import view_config
from .paging import Pager

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def client_urls(request) -> dict:
    """The URLs a client is given for this server, as the visitor reached it."""
    base = request.application_url
    host = urlsplit(base).hostname or ""
    return {
        "index_url": base + "/simple/",
        "upload_url": base + "/legacy/",
        # pip ignores a plain-http index on any host but this one unless told to trust it.
        "trusted_host": host if base.startswith("http:") and host not in LOCAL_HOSTS
        else None,
    }


@view_config(route_name="home", renderer="ui/home.html")
def home(request):
    return client_urls(request)


@view_config(route_name="search", renderer="ui/search.html", permission="read")
@view_config(route_name="search", renderer="ui/search_results.html", permission="read",
             request_param="partial")
def search(context, request):
    """Full page, or with ?partial=1 only the results (the search-as-you-type update)."""
    query = request.GET.get("q", "")
    pager = Pager.from_request(request, keep=("q",))
    result = search_projects(context.repository.project_names(request.work), query,
                             pager.offset, pager.per_page)
    return {"query": query, "result": result, "pager": pager.with_total(result.total),
            **client_urls(request)}
