"""The JSON API (/pypi/<name>/json) in the public index's shape."""

from __future__ import annotations

from ..errors import NotFound
from ..routes import repository_routes
from . import json_response, missing, redirect, view_config

JSON_ROUTES = tuple(r for name in ("json_project", "json_project_slash", "json_release",
                                   "json_release_slash") for r in repository_routes(name))


@view_config(route_name=JSON_ROUTES, request_method="GET", permission="read")
def project_json(context, request):
    if not context.valid:
        return json_response({"message": "Not Found"}, 404)
    version = request.matchdict.get("version")
    if context.raw_name != context.name:
        tail = f"/{version}/json" if version else "/json"
        return redirect(request, f"{context.base[len(request.script_name):]}/pypi/"
                                 f"{context.name}{tail}")
    # Absolute URLs only from the configured address: one built from the Host header is
    # the client's to choose, and a shared cache in front would hand it to everyone.
    base = (request.app_config.public_url or "") + context.base[len(request.script_name):] \
        if request.app_config.public_url else context.base
    try:
        data = request.repository.json_api(request.work, context.name, version, base)
    except NotFound as exc:
        return missing(request, exc, "Not Found", as_json=True)
    response = json_response(data)
    response.cache_control = "max-age=0, must-revalidate"
    response.md5_etag()
    response.conditional_response = True
    return response
