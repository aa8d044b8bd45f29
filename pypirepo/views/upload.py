"""The legacy upload API (what twine, poetry, uv, pdm and hatch post to)."""

from __future__ import annotations

from pyramid.response import Response

from ..upload import FORM_ALLOWANCE, UploadError, parse_form, read_body
from . import error_response, view_config


@view_config(route_name="upload0", permission="upload")
@view_config(route_name="upload1", permission="upload")
@view_config(route_name="upload2", permission="upload")
@view_config(route_name="upload3", permission="upload")
@view_config(route_name="upload4", permission="upload")
def upload(context, request):
    limit = request.registry.app_config.max_upload_size
    if request.content_length and request.content_length > limit + FORM_ALLOWANCE:
        return error_response(request, 413, f"File too large. Limit is {limit} bytes.")
    if not (request.content_type or "").startswith("multipart/form-data"):
        return error_response(request, 400, "Uploads must be multipart/form-data.")
    try:
        body = read_body(request.environ, limit)
    except UploadError as exc:
        return error_response(request, exc.status, exc.message)
    try:
        form = parse_form(body)
        message = request.index.upload(form, request.pypirepo_user)
    except UploadError as exc:
        return error_response(request, exc.status, exc.message)
    finally:
        body.close()  # the spooled file part, now in storage or refused
    return Response(body=(message + "\n").encode(), content_type="text/plain", charset="utf-8")

