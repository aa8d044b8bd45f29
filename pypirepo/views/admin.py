"""The access API: a user's own API tokens (/api/tokens), and for server admins the users,
groups, grants and everyone's tokens (/api/admin/...); a project's owners and grants
(/api/[r/<name>/]projects/<project>/owners|grants); its OpenAPI document. Each view
parses the JSON and asks pypirepo.access.admin (or .owners), which decides who may.

One view per URL, dispatching on the method, so that a method the URL doesn't take is a
405 naming those it does (not a 404 from an unmatched predicate).
"""

from __future__ import annotations

import re

from pyramid.response import Response

from ..access.admin import AccessAdmin
from ..access.openapi import document
from ..access.owners import ProjectAdmin
from ..errors import LoginRequired, Refused
from ..routes import repository_routes
from . import challenge, error_response, json_body, json_response, view_config


def _answer(request, handlers: dict, login: bool = True, service=AccessAdmin):
    if login and request.identity is None:  # before anything the URL says is looked at
        return challenge(request, request.pypirepo_auth[1] or "Authentication required.")
    method = "GET" if request.method == "HEAD" else request.method
    handler = handlers.get(method)
    if handler is None:
        allowed = ", ".join(sorted({*handlers, "HEAD"} if "GET" in handlers else handlers))
        return error_response(request, 405, f"{request.method} is not allowed here "
                                            f"(allowed: {allowed}).", {"Allow": allowed})
    try:
        response = handler(service(request.access), request.identity)
    except LoginRequired:
        return challenge(request, request.pypirepo_auth[1] or "Authentication required.")
    # Secrets (a new token) and the lists of who may do what stay out of every cache.
    response.cache_control = "no-store"
    return response


def _created(data) -> Response:
    return json_response(data, 201)


def _gone() -> Response:
    return Response(status=204)


# The ids are the database's INTEGER columns: what doesn't fit is no id (PostgreSQL
# would refuse the query).
_MAX_ID = 2**31 - 1


def _id(request) -> int:
    text = request.matchdict["id"]
    if not re.fullmatch(r"[0-9]{1,10}", text) or int(text) > _MAX_ID:
        raise Refused(404, f"No such id: {text[:40]!r}.")
    return int(text)


def _flag(request, name: str) -> bool:
    return request.GET.get(name, "").lower() in ("1", "true", "yes")


def _collection(request, key: str, listed, add):
    """A list (GET) and what adds to it (POST): AccessAdmin's methods."""
    return _answer(request, {
        "GET": lambda admin, who: json_response({key: listed(admin, who)}),
        "POST": lambda admin, who: _created(add(admin, who, json_body(request))),
    })


def _item(request, ident, get, remove, change=None, change_method: str = "PATCH"):
    """One thing: ident() names it (read once the caller is known); get, remove and change
    are AccessAdmin's methods."""
    def removed(admin, who):
        remove(admin, who, ident())
        return _gone()

    handlers = {"GET": lambda admin, who: json_response(get(admin, who, ident())),
                "DELETE": removed}
    if change is not None:
        handlers[change_method] = lambda admin, who: json_response(
            change(admin, who, ident(), json_body(request)))
    return _answer(request, handlers)


@view_config(route_name="api_openapi")
def openapi(request):
    return _answer(request, {"GET": lambda _admin, _who: json_response(document(request))},
                   login=False)


@view_config(route_name="api_tokens")
def tokens(request):
    def create(admin, who, payload):
        secret, info = admin.create_token(who, payload)
        return {"token": secret, **info}

    return _collection(request, "tokens",
                       lambda admin, who: admin.token_list(who, revoked=_flag(request, "revoked")),
                       create)


@view_config(route_name="api_token")
def token(request):
    return _item(request, lambda: _id(request), AccessAdmin.token, AccessAdmin.revoke_token,
                 AccessAdmin.change_token)


@view_config(route_name="api_admin_tokens")
def all_tokens(request):
    def listed(admin, who):
        user = request.GET.get("user")
        return json_response({"tokens": admin.token_list(
            who, user=user, everyone=user is None, revoked=_flag(request, "revoked"))})

    return _answer(request, {"GET": listed})


@view_config(route_name="api_admin_users")
def users(request):
    return _collection(request, "users", AccessAdmin.users, AccessAdmin.add_user)


@view_config(route_name="api_admin_user")
def user(request):
    return _item(request, lambda: request.matchdict["name"], AccessAdmin.user,
                 AccessAdmin.remove_user, AccessAdmin.change_user)


@view_config(route_name="api_admin_groups")
def groups(request):
    return _collection(request, "groups", AccessAdmin.groups, AccessAdmin.add_group)


@view_config(route_name="api_admin_group")
def group(request):
    return _item(request, lambda: request.matchdict["name"], AccessAdmin.group,
                 AccessAdmin.remove_group, AccessAdmin.set_group, change_method="PUT")


@view_config(route_name="api_admin_grants")
def grants(request):
    return _collection(request, "grants", AccessAdmin.grants, AccessAdmin.add_grant)


@view_config(route_name="api_admin_grant")
def grant(request):
    return _item(request, lambda: _id(request), AccessAdmin.grant, AccessAdmin.remove_grant)


# --- a project's owners and grants ----------------------------------------------------------


def _project(request, handlers: dict):
    """handlers: method -> f(ProjectAdmin, who, (repository, project, valid name))."""
    context = request.context
    named = (context.repository, context.name, context.valid)
    return _answer(request, {m: (lambda h: lambda admin, who: h(admin, who, named))(h)
                             for m, h in handlers.items()},
                   service=lambda access: ProjectAdmin(access, request.work))


@view_config(route_name=repository_routes("api_project_owners"))
def project_owners(request):
    def add(admin, who, named):
        owners, added = admin.add_owner(who, *named, json_body(request))
        return json_response(owners, 201 if added else 200)

    return _project(request, {
        "GET": lambda admin, who, named: json_response(admin.owners(who, *named)),
        "POST": add})


@view_config(route_name=repository_routes("api_project_owner"))
def project_owner(request):
    def remove(admin, who, named):
        admin.remove_owner(who, *named, request.matchdict["user"])
        return _gone()

    return _project(request, {"DELETE": remove})


@view_config(route_name=repository_routes("api_project_grants"))
def project_grants(request):
    return _project(request, {
        "GET": lambda admin, who, named: json_response(admin.grants(who, *named)),
        "POST": lambda admin, who, named: _created(
            admin.add_grant(who, *named, json_body(request)))})


@view_config(route_name=repository_routes("api_project_grant"))
def project_grant(request):
    def remove(admin, who, named):
        admin.remove_grant(who, *named, _id(request))
        return _gone()

    return _project(request, {"DELETE": remove})
