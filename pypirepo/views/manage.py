"""The writers' API (delete, yank, promote, events), the repository list, and health."""

from __future__ import annotations

from pyramid.httpexceptions import HTTPForbidden

from .. import names
from ..errors import NotFound
from ..repositories.hosted import storable_text
from ..repositories.promote import promote as promote_release
from ..routes import READS, UPLOAD_PATHS, repository_routes
from . import error_response, json_body, json_response, view_config
from . import missing as missing_answer


def _names_a_file(context, match) -> bool:
    """Whether the URL can name a stored file at all: names that could not be stored are
    never looked up (PostgreSQL refuses a NUL in a query's text as an error)."""
    return context.valid and names.is_safe_filename(match.get("filename", "x"))


@view_config(route_name=repository_routes("api_file"), request_method="DELETE",
             permission="delete")
@view_config(route_name=repository_routes("api_version"), request_method="DELETE",
             permission="delete")
def delete(context, request):
    repo, work, match = request.repository, request.work, request.matchdict
    gone_what = "No such file." if "filename" in match else "No such version."
    if not _names_a_file(context, match):
        return error_response(request, 404, gone_what)
    try:
        if "filename" in match:
            gone = repo.delete_file(work, context.name, match["filename"])
        else:
            gone = repo.delete_version(work, context.name, match["version"])
    except NotFound as exc:
        return missing_answer(request, exc, gone_what)
    return json_response({"deleted": gone})


@view_config(route_name=repository_routes("api_yank"), request_method="POST",
             permission="delete")
def yank(context, request):
    if not context.valid:
        return error_response(request, 404, "No such version.")
    reason = json_body(request).get("reason")
    if not isinstance(reason, (str, type(None))):
        return error_response(request, 400, "'reason' must be a string.")
    if reason and not storable_text(reason):
        return error_response(request, 400, "'reason' contains a NUL or an invalid character.")
    yanked = request.matchdict["action"] == "yank"
    try:
        files = request.repository.set_yanked(request.work, context.name,
                                              request.matchdict["version"], yanked, reason)
    except NotFound as exc:
        return missing_answer(request, exc, "No such version.")
    return json_response({"yanked": yanked, "reason": reason if yanked else None, "files": files})


@view_config(route_name=repository_routes("api_promote"), request_method="POST",
             permission="delete")
def promote(context, request):
    """POST {"to": "<repository>", "move": false}: the release copied (or moved) into
    another repository. Promoting out of a repository takes the right to delete there;
    into one, the right to upload there."""
    if not context.valid:
        return error_response(request, 404, "No such version.")
    payload = json_body(request)
    to, move = payload.get("to"), payload.get("move", False)
    if not isinstance(to, str) or not isinstance(move, bool):
        return error_response(request, 400, 'The body must be {"to": "<repository>", '
                                            '"move": false}.')
    target = request.repositories.get(to)
    if target is None:
        return error_response(request, 404, f"No repository named {to!r}.")
    try:
        answer = promote_release(request.work, request.repository, context.name,
                                 request.matchdict["version"], target, move)
    except NotFound as exc:
        return missing_answer(request, exc, "No such version.")
    return json_response(answer)


@view_config(route_name=repository_routes("api_events"), request_method="GET",
             permission="read")
def events(context, request):
    if not context.valid:
        return error_response(request, 404, f"No project named {context.raw_name!r}.")
    try:
        rows = request.repository.events(request.work, context.name)
    except NotFound as exc:
        return missing_answer(request, exc, f"No project named {context.name!r}.")
    return json_response({"events": [
        {"time": e.time.strftime("%Y-%m-%dT%H:%M:%SZ"), "repository": e.repository,
         "user": e.user, "action": e.action, "version": e.version, "filename": e.filename,
         "detail": e.detail} for e in rows
    ]})


@view_config(route_name="api_repositories", request_method=READS)
def repositories(context, request):
    """Every repository the caller may read something of, with its kind, settings and
    URLs. No route permission: the default repository's would refuse whoever may read
    another one only (a token scoped to it); nothing readable at all is refused (401 so
    that a client logs in, 403 when logged in)."""
    root = request.app_config.public_url or request.application_url
    listed = []
    identity = request.identity
    for repo in request.repositories:
        if not request.access.may_somewhere(identity, repo, "read"):
            continue  # what the caller may not read is not theirs to know of
        base = f"{root}/r/{repo.name}"
        entry = {"name": repo.name, "kind": repo.kind,
                 "default": repo is request.repositories.default,
                 "simple_url": f"{base}/simple/", **repo.describe()}
        if repo.kind in ("hosted", "group"):
            entry["upload_url"] = f"{base}/legacy/"
        listed.append(entry)
    if not listed or request.pypirepo_bad_credentials:
        raise HTTPForbidden()
    return json_response({"repositories": listed,
                          "default": {"simple_url": f"{root}/simple/",
                                      "upload_url": f"{root}{UPLOAD_PATHS[1]}"}})


@view_config(route_name="health", request_method="GET")
def health(request):
    # "ok" is this server's own state: with the upstream down it still serves what it
    # holds and what is cached, so a load balancer must not take it out for that.
    return json_response({"status": "ok", **request.repositories.health()})
