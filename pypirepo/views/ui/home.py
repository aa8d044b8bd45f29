"""The home page, project search, a repository's page and a project's page."""

from __future__ import annotations

from urllib.parse import quote

from pyramid.httpexceptions import HTTPFound

from ...errors import Hidden
from ...pages.ui import PER_PAGE, Viewer
from .. import error_response, missing, redirect, view_config
from .manage import project_actions, upload_page_url
from .paging import Pager
from .urls import client_urls, repository_page_url, server_url, ui_base, ui_pages

READ = "read"


def viewer(request, repository) -> Viewer:
    access = request.access
    readable_in = None
    if repository.kind == "group":
        holders = {r.id: r for r in request.repositories if r.id is not None}

        def readable_in(repository_id: int, names: list[str]) -> list[str]:
            return access.readable(request, holders[repository_id], names)

    identity = request.identity
    who = "bad credentials" if request.pypirepo_bad_credentials else \
        (identity.principals, identity.token, identity.admin) if identity else "anonymous"
    return Viewer(access.reads_all(request, repository),
                  lambda names: access.readable(request, repository, names), readable_in,
                  key=(access.policy, who))


@view_config(route_name="home", renderer="ui/home.html")
def home(request):
    default = request.repositories.default
    readable = [r for r in request.repositories
                if request.access.may_somewhere(request.identity, r, READ)]
    readable.sort(key=lambda r: r is not default)  # the default first, then as declared
    cards = ui_pages(request).repositories(request.work, readable, default,
                                           lambda repo: viewer(request, repo))
    return {"repositories": cards, "default_name": default.name, "public_url":
            server_url(request), **client_urls(request)}


def _listing(context, request, page_url: str) -> dict:
    """A repository's projects: ?q= (name and summary), ?sort=name|updated, ?page=N."""
    query = request.GET.get("q", "")
    sort = request.GET.get("sort", "name")
    pager = Pager.from_request(request, per_page=PER_PAGE, keep=("q", "sort"))
    listing = ui_pages(request).listing(request.work, request.repository,
                                        viewer(request, request.repository), query, sort,
                                        pager.offset, pager.per_page)
    return {"listing": listing, "query": listing.query, "pager": pager.with_total(listing.total),
            "repository": request.repository, "page_url": page_url,
            "project_base": ui_base(request, context), **client_urls(request, context)}


@view_config(route_name="search", renderer="ui/search.html", permission="read")
@view_config(route_name="search", renderer="ui/project_list.html", permission="read",
             request_param="partial")
def search(context, request):
    """Full page, or with ?partial=1 only the results (the search-as-you-type update)."""
    return _listing(context, request, request.script_name + "/search")


@view_config(route_name=("ui_repository", "r:ui_repository"), renderer="ui/repository.html",
             permission="read")
@view_config(route_name=("ui_repository", "r:ui_repository"),
             renderer="ui/project_list.html", permission="read", request_param="partial")
def repository_page(context, request):

    return {**_listing(context, request, repository_page_url(request, context)),
            "upload_page_url": upload_page_url(request, context)}


@view_config(route_name="r:ui_repository_noslash")
def repository_noslash(context, request):
    return redirect(request, f"/r/{request.matchdict['repo']}/")


@view_config(route_name=("ui_project", "r:ui_project", "ui_release", "r:ui_release"),
             renderer="ui/project.html", permission="read")
def project_page(context, request):
    if not context.valid:
        return error_response(request, 404, "Not Found")
    here = ui_base(request, context)[len(request.script_name):]
    version = request.matchdict.get("version") or request.GET.get("version")
    if context.raw_name != context.name or "version" in request.GET:
        # The version picker's form (?version=) and other spellings of the name land on
        # the page's own address.
        path = f"{here}/project/{context.name}/" + (f"{quote(version, safe='')}/"
                                                    if version else "")
        return HTTPFound(location=request.script_name + path)
    try:
        # Asked first, as the simple page does: a name the caller could not read is
        # answered alike whether it exists or not.
        request.work.require(request.repository, context.name, READ)
        page = ui_pages(request).project(request.work, request.repository, context.name,
                                         version)
    except Hidden as exc:  # answered as a project that does not exist
        return missing(request, exc, f"No project named {context.name!r}.")
    if page is None:
        return error_response(request, 404, f"No project named {context.name!r}."
                              if not version else f"{context.name!r} has no release "
                                                  f"{version!r}.")

    return {"project": page, "project_base": ui_base(request, context),
            "actions": project_actions(request, context, page),
            "repository": request.repository, "repository_url":
            repository_page_url(request, context), **client_urls(request, context)}
