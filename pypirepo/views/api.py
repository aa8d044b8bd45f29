"""The JSON API (/pypi/<name>/json) and the writers' API to delete and yank."""

from __future__ import annotations


from .. import names
from ..errors import NotFound
from ..index import storable_text
from . import error_response, json_response, redirect, view_config


@view_config(route_name="json_project", request_method="GET", permission="read")
@view_config(route_name="json_project_slash", request_method="GET", permission="read")
@view_config(route_name="json_release", request_method="GET", permission="read")
@view_config(route_name="json_release_slash", request_method="GET", permission="read")
def project_json(context, request):
    if not context.valid:
        return json_response({"message": "Not Found"}, 404)
    version = request.matchdict.get("version")
    if context.raw_name != context.name:
        tail = f"/{version}/json" if version else "/json"
        return redirect(request, f"/pypi/{context.name}{tail}")
    # Absolute URLs only from the configured address: one built from the Host header is
    # the client's to choose, and a shared cache in front would hand it to everyone.
    base = request.registry.app_config.public_url or request.script_name
    try:
        data = request.index.json_api(context.name, version, base)
    except NotFound:
        return json_response({"message": "Not Found"}, 404)
    response = json_response(data)
    response.cache_control = "max-age=0, must-revalidate"
    response.md5_etag()
    response.conditional_response = True
    return response


def _names_a_file(context, match) -> bool:
    """Whether the URL can name a stored file at all: names that could not be stored are
    never looked up (PostgreSQL refuses a NUL in a query's text as an error)."""
    return context.valid and names.is_safe_filename(match.get("filename", "x"))


@view_config(route_name="api_file", request_method="DELETE", permission="delete")
@view_config(route_name="api_version", request_method="DELETE", permission="delete")
def delete(context, request):
    index, user, match = request.index, request.pypirepo_user, request.matchdict
    if not _names_a_file(context, match):
        return error_response(request, 404, "No such file." if "filename" in match
                              else "No such version.")
    try:
        if "filename" in match:
            gone = index.delete_file(context.name, match["filename"], user)
        else:
            gone = index.delete_version(context.name, match["version"], user)
    except NotFound:
        return error_response(request, 404, "No such file." if "filename" in match
                              else "No such version.")
    return json_response({"deleted": gone})


@view_config(route_name="api_yank", request_method="POST", permission="delete")
def yank(context, request):
    if not context.valid:
        return error_response(request, 404, "No such version.")
    reason = None
    if request.body:
        try:
            payload = request.json_body
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deep
            return error_response(request, 400, "The body must be JSON, e.g. {\"reason\": \"...\"}.")
        if not isinstance(payload, dict) or not isinstance(payload.get("reason", ""), (str, type(None))):
            return error_response(request, 400, "'reason' must be a string.")
        reason = payload.get("reason")
        if reason and not storable_text(reason):
            return error_response(request, 400, "'reason' contains a NUL or an invalid "
                                                "character.")
    yanked = request.matchdict["action"] == "yank"
    try:
        files = request.index.set_yanked(context.name, request.matchdict["version"], yanked,
                                         reason, request.pypirepo_user)
    except NotFound:
        return error_response(request, 404, "No such version.")
    return json_response({"yanked": yanked, "reason": reason if yanked else None, "files": files})


@view_config(route_name="api_events", request_method="GET", permission="read")
def events(context, request):
    if not context.valid:
        return error_response(request, 404, f"No project named {context.raw_name!r}.")
    rows = request.index.cache.events(context.name)
    return json_response({"events": [
        {"time": e.time.strftime("%Y-%m-%dT%H:%M:%SZ"), "user": e.user, "action": e.action,
         "version": e.version, "filename": e.filename, "detail": e.detail} for e in rows
    ]})


@view_config(route_name="health", request_method="GET")
def health(request):
    # "ok" is this server's own state: with the upstream down it still serves what it
    # holds and what is cached, so a load balancer must not take it out for that.
    return json_response({"status": "ok", "upstream": request.registry.fallback.health()})
