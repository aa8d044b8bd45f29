"""The legacy upload API (what twine, poetry, uv, pdm and hatch post to)."""

from __future__ import annotations

from pyramid.response import Response

from ..routes import UPLOAD_PATHS, repository_routes
from ..upload import FORM_ALLOWANCE, parse_form, read_body
from . import error_response, view_config

UPLOAD_ROUTES = tuple(r for i in range(len(UPLOAD_PATHS)) for r in repository_routes(f"upload{i}"))


@view_config(route_name=UPLOAD_ROUTES, permission="upload")
def upload(context, request):
    limit = request.repositories.max_upload_size
    if request.content_length and request.content_length > limit + FORM_ALLOWANCE:
        return error_response(request, 413, f"File too large. Limit is {limit} bytes.")
    if not (request.content_type or "").startswith("multipart/form-data"):
        return error_response(request, 400, "Uploads must be multipart/form-data.")
    # A refusal (Refused: a 4xx with its reason) is answered by views/errors.py.
    body = read_body(request.environ, limit)
    try:
        message = request.repository.upload(request.work, parse_form(body))
    finally:
        body.close()  # the spooled file part, now in storage or refused
    return Response(body=(message + "\n").encode(), content_type="text/plain", charset="utf-8")
