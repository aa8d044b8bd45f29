"""401 vs 403 vs 404, as every client expects them: an anonymous caller who may not read
gets 401 with a Basic challenge (so pip asks keyring), a logged-in one 403, and an
authorization failure is never turned into a 404 (uv would try its next index)."""

from pyramid.httpexceptions import HTTPNotFound

from ..errors import Refused
from . import error_response, forbidden_view_config, notfound_view_config, view_config


@forbidden_view_config()
def forbidden(request):
    bad = request.pypirepo_bad_credentials
    realm = request.registry.app_config.realm
    challenge = {"WWW-Authenticate": f'Basic realm="{realm}"'}
    if bad:
        return error_response(request, 401, bad, challenge)
    if request.pypirepo_user is None:
        err = request.pypirepo_auth[1]
        return error_response(request, 401, err or "Authentication required.", challenge)
    return error_response(
        request, 403,
        f"The user {request.pypirepo_user!r} isn't allowed to do that here.",
    )


@notfound_view_config()
def notfound(request):
    return error_response(request, 404, "Not Found")


def not_found(message="Not Found"):
    return HTTPNotFound(message)


@view_config(context=Refused)
def refused(exc, request):
    return error_response(request, exc.status, exc.message)
