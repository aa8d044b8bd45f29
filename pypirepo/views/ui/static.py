"""GET /static/<digest>/<name>: the UI's CSS, JavaScript and icons."""

from __future__ import annotations

from pyramid.response import Response

from ...interfaces import IStaticAssets
from .. import error_response, view_config

FOREVER = "public, max-age=31536000, immutable"
# A page from another release asked for a digest we don't have (a rolling upgrade):
# today's file is the best answer, but only for this once.
REVALIDATE = "public, no-cache"


@view_config(route_name="static")
def static_file(request):
    asset = request.registry.getUtility(IStaticAssets).get(request.matchdict["name"])
    if asset is None:
        return error_response(request, 404, "Not Found")
    response = Response(body=asset.body, content_type=None, conditional_response=True)
    response.headers["Content-Type"] = asset.content_type
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.etag = asset.token
    response.cache_control = FOREVER if request.matchdict["token"] == asset.token \
        else REVALIDATE
    return response
