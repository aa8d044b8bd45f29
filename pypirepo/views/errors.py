"""Every refusal mapped to its HTTP answer, in one place.

401 vs 403 vs 404, as every client expects them: an anonymous caller who may not read
gets 401 with a Basic challenge (so pip asks keyring), a logged-in one 403, and an
authorization failure is never turned into a 404 (uv would try its next index). The
domain's exceptions (pypirepo.errors) get theirs here too.
"""

from pyramid.httpexceptions import HTTPFound, HTTPNotFound

from ..access.throttle import Throttled
from ..errors import (
    FallbackDenied,
    LoginRequired,
    LoopDetected,
    NotFound,
    RedirectUpstream,
    Refused,
    StoredMeanwhile,
    UpstreamFailed,
)
from ..upstream.client import UpstreamBusy
from . import (
    challenge,
    error_response,
    forbidden_view_config,
    missing,
    notfound_view_config,
    view_config,
)


def _challenge(request) -> dict:
    return {"WWW-Authenticate": f'Basic realm="{request.app_config.realm}"'}


@forbidden_view_config()
def forbidden(request):
    bad = request.pypirepo_bad_credentials
    if isinstance(bad, Throttled):
        return throttled(bad, request)
    if bad:
        return error_response(request, 401, bad, _challenge(request))
    if request.pypirepo_user is None:
        err = request.pypirepo_auth[1]
        return error_response(request, 401, err or "Authentication required.",
                              _challenge(request))
    return error_response(
        request, 403,
        f"The user {request.pypirepo_user!r} isn't allowed to do that here.",
    )


@notfound_view_config()
def notfound(exc, request):
    # A route factory's own reason (an unknown repository) is kept; Pyramid's for a URL
    # no route matches is its debugging text, not for clients.
    detail = exc.detail if isinstance(exc, HTTPNotFound) and request.matched_route else None
    return error_response(request, 404, detail or "Not Found")


def not_found(message="Not Found"):
    return HTTPNotFound(message)


@view_config(context=Refused)
def refused(exc, request):
    return error_response(request, exc.status, exc.message)


@view_config(context=Throttled)
def throttled(exc, request):
    return error_response(request, exc.status, exc.message, exc.headers)


@view_config(context=NotFound)
def not_here(exc, request):
    # What no view answered itself (each names what is missing in its own words).
    return missing(request, exc, f"Not found: {exc}.")


@view_config(context=LoginRequired)
def login_required(exc, request):
    return challenge(request)


@view_config(context=FallbackDenied)
def fallback_denied(exc, request):
    # Anonymous: ask for credentials, which pip only sends after a 401. A user
    # who may not fill the cache sees the name as unknown here, as in pypicloud.
    if request.pypirepo_user is None:
        return error_response(request, 401, f"{exc} Log in to fetch it.", _challenge(request))
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
