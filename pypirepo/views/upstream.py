"""The fallback's answers as responses: the simple and file views hand a miss to the
fallback service through the two helpers below; its refusals arrive here as exceptions."""

from __future__ import annotations

from pyramid.httpexceptions import HTTPFound
from pyramid.response import Response

from ..fallback import (
    FallbackDenied,
    LoopDetected,
    RedirectUpstream,
    StoredMeanwhile,
    UpstreamFailed,
    UpstreamMetadata,
    UpstreamStream,
)
from ..upstream.client import UpstreamBusy
from . import error_response, immutable_cache_control, metadata_response, view_config



def fallback_page(request, name: str):
    """The project's page: what we hold, with (or replaced by) upstream's files when the
    fallback applies; None for a 404."""
    fallback = request.registry.fallback
    return fallback.project_page(request.index, name, request.script_name,
                                 request.pypirepo_user,
                                 looped=fallback.is_own_request(request.headers.get("Via")))


def fallback_download(request, name: str, filename: str):
    """A response for a file we hold no row for, or None for a plain 404."""
    fallback = request.registry.fallback
    answer = fallback.download(request.index, name, filename, request.pypirepo_user,
                               head=request.method == "HEAD",
                               looped=fallback.is_own_request(request.headers.get("Via")))
    if answer is None:
        return None
    if isinstance(answer, UpstreamMetadata):
        return metadata_response(request, answer.body)
    cache = immutable_cache_control(request)
    assert isinstance(answer, UpstreamStream)
    # Ranges are not offered until the file is held; clients then fetch it whole.
    response = Response(content_type="application/octet-stream")
    if answer.reader is not None:
        response.app_iter = answer.reader
    if answer.size is not None:
        response.content_length = answer.size
    response.etag = answer.sha256
    response.cache_control = cache
    response.content_disposition = f'attachment; filename="{answer.filename}"'
    return response


@view_config(context=FallbackDenied)
def fallback_denied(exc, request):
    # Anonymous: ask for credentials, which pip only sends after a 401. A user
    # who may not fill the cache sees the name as unknown here, as in pypicloud.
    if request.pypirepo_user is None:
        realm = request.registry.app_config.realm
        return error_response(request, 401, f"{exc} Log in to fetch it.",
                              {"WWW-Authenticate": f'Basic realm="{realm}"'})
    return error_response(request, 404, str(exc) + ".")


@view_config(context=UpstreamFailed)
def upstream_failed(exc, request):
    return error_response(request, 502, str(exc))


@view_config(context=UpstreamBusy)
def upstream_busy(exc, request):
    # Every thread that may wait on the upstream is waiting on it: this one is kept for
    # what is held here. Installers retry a 503, after Retry-After where they read it.
    return error_response(request, 503, str(exc), {"Retry-After": str(exc.RETRY_AFTER)})


@view_config(context=LoopDetected)
def loop_detected(exc, request):
    return error_response(request, 508, str(exc))


@view_config(context=RedirectUpstream)
def redirect_upstream(exc, request):
    response = HTTPFound(location=exc.location)
    response.vary = ("Accept",)
    return response


@view_config(context=StoredMeanwhile)
def stored_meanwhile(exc, request):
    # The fetch finished between our lookups; the same URL now serves the stored file.
    return HTTPFound(location=request.path_qs)
