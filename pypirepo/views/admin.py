"""The access API: a user's own API tokens (/api/tokens), and for server admins the users,
groups, grants and everyone's tokens (/api/admin/...); its OpenAPI document. Each view
parses the JSON and asks pypirepo.access.admin, which decides who may.

One view per URL, dispatching on the method, so that a method the URL doesn't take is a
405 naming those it does (not a 404 from an unmatched predicate).
"""

from __future__ import annotations

from pyramid.response import Response

from ..access.admin import AccessAdmin
from ..access.openapi import document
from ..errors import LoginRequired, Refused
from . import challenge, error_response, json_body, json_response, view_config


def _answer(request, handlers: dict, login: bool = True):
    if login and request.identity is None:  # before anything the URL says is looked at
        return challenge(request, request.pypirepo_auth[1] or "Authentication required.")
    method = "GET" if request.method == "HEAD" else request.method
    handler = handlers.get(method)
    if handler is None:
        allowed = ", ".join(sorted({*handlers, "HEAD"} if "GET" in handlers else handlers))
        return error_response(request, 405, f"{request.method} is not allowed here "
                                            f"(allowed: {allowed}).", {"Allow": allowed})
    try:
        response = handler(AccessAdmin(request.access), request.identity)
    except LoginRequired:
        return challenge(request, request.pypirepo_auth[1] or "Authentication required.")
    # Secrets (a new token) and the lists of who may do what stay out of every cache.
    response.cache_control = "no-store"
    return response


def _created(data) -> Response:
    return json_response(data, 201)


def _gone() -> Response:
    return Response(status=204)


def _id(request) -> int:
    text = request.matchdict["id"]
    if not text.isdigit() or len(text) > 18:
        raise Refused(404, f"No such id: {text[:40]!r}.")
    return int(text)


def _flag(request, name: str) -> bool:
    return request.GET.get(name, "").lower() in ("1", "true", "yes")


@view_config(route_name="api_openapi")
def openapi(request):
    return _answer(request, {"GET": lambda _admin, _who: json_response(document(request))},
                   login=False)


@view_config(route_name="api_tokens")
def tokens(request):
    def create(admin, who):
        secret, info = admin.create_token(who, json_body(request))
        return _created({"token": secret, **info})

    return _answer(request, {
        "GET": lambda admin, who: json_response({"tokens": admin.token_list(
            who, revoked=_flag(request, "revoked"))}),
        "POST": create,
    })


@view_config(route_name="api_token")
def token(request):
    def revoke(admin, who):
        admin.revoke_token(who, _id(request))
        return _gone()

    return _answer(request, {
        "GET": lambda admin, who: json_response(admin.token(who, _id(request))),
        "PATCH": lambda admin, who: json_response(
            admin.change_token(who, _id(request), json_body(request))),
        "DELETE": revoke,
    })


@view_config(route_name="api_admin_tokens")
def all_tokens(request):
    def listed(admin, who):
        user = request.GET.get("user")
        return json_response({"tokens": admin.token_list(
            who, user=user, everyone=user is None, revoked=_flag(request, "revoked"))})

    return _answer(request, {"GET": listed})


@view_config(route_name="api_admin_users")
def users(request):
    return _answer(request, {
        "GET": lambda admin, who: json_response({"users": admin.users(who)}),
        "POST": lambda admin, who: _created(admin.add_user(who, json_body(request))),
    })


@view_config(route_name="api_admin_user")
def user(request):
    name = request.matchdict["name"]

    def remove(admin, who):
        admin.remove_user(who, name)
        return _gone()

    return _answer(request, {
        "GET": lambda admin, who: json_response(admin.user(who, name)),
        "PATCH": lambda admin, who: json_response(
            admin.change_user(who, name, json_body(request))),
        "DELETE": remove,
    })


@view_config(route_name="api_admin_groups")
def groups(request):
    return _answer(request, {
        "GET": lambda admin, who: json_response({"groups": admin.groups(who)}),
        "POST": lambda admin, who: _created(admin.add_group(who, json_body(request))),
    })


@view_config(route_name="api_admin_group")
def group(request):
    name = request.matchdict["name"]

    def remove(admin, who):
        admin.remove_group(who, name)
        return _gone()

    return _answer(request, {
        "GET": lambda admin, who: json_response(admin.group(who, name)),
        "PUT": lambda admin, who: json_response(
            admin.set_group(who, name, json_body(request))),
        "DELETE": remove,
    })


@view_config(route_name="api_admin_grants")
def grants(request):
    return _answer(request, {
        "GET": lambda admin, who: json_response({"grants": admin.grants(who)}),
        "POST": lambda admin, who: _created(admin.add_grant(who, json_body(request))),
    })


@view_config(route_name="api_admin_grant")
def grant(request):
    def remove(admin, who):
        admin.remove_grant(who, _id(request))
        return _gone()

    return _answer(request, {
        "GET": lambda admin, who: json_response(admin.grant(who, _id(request))),
        "DELETE": remove,
    })
