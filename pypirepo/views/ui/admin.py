"""The administration pages (/admin/...): users, groups and grants for server admins, and the
repositories' overview with their cache statistics for admins of a repository too.

Every change goes through pypirepo.access.admin.AccessAdmin, the service of the admin
JSON API: it decides who may and checks what comes in; these views read forms, turn its
refusals into the form again with the reason (and its 4xx), and render. The CSRF token of
every form is checked before any view runs (pypirepo.access.session.csrf_tween).
"""

from __future__ import annotations

from urllib.parse import quote

from ...access.admin import AccessAdmin
from ...access.model import ADMIN, ANYWHERE, PERMISSIONS
from ...access.session import small_form
from ...errors import LoginRequired, Refused
from ...pages.overview import repository_overview
from ...routes import READS
from .. import challenge, error_response, redirect, view_config
from .account import NO_STORE, see_other
from .flash import set_flash

NOT_ADMIN = "Only administrators of this server may see this page."
# What a change says on the page it leads back to (a one-time message: views/ui/flash.py).
DONE = {
    "user-added": "User {} was added.",
    "password-set": "The password of {} was set.",
    "password-removed": "{} can no longer sign in with a password.",
    "admin-on": "{} is an administrator now.",
    "admin-off": "{} is no longer an administrator.",
    "user-removed": "User {} was removed.",
    "group-added": "Group {} was made.",
    "member-added": "{} was added to the group.",
    "member-removed": "{} was removed from the group.",
    "group-removed": "Group {} was removed.",
    "grant-added": "The grant was added: {}.",
    "grant-removed": "The grant was removed: {}.",
}
# The sections' tabs: (label, path after /admin), for server admins.
SECTIONS = (("Repositories", "/"), ("Users", "/users"), ("Groups", "/groups"),
            ("Grants", "/grants"))


class Answer(Exception):
    """Give this response instead of the page (the caller may not see it)."""

    def __init__(self, response):
        super().__init__()
        self.response = response


def admin_url(request, path: str = "/") -> str:
    return f"{request.script_name}/admin{path}"


def _server_admin(request) -> tuple[AccessAdmin, object]:
    """(the service, the admin) or Answer: a 401 (sign in) or a 403 page."""
    admin = AccessAdmin(request.access)
    try:
        return admin, admin.require_admin(request.identity)
    except LoginRequired:
        raise Answer(challenge(request)) from None
    except Refused as exc:
        raise Answer(error_response(request, exc.status, f"{NOT_ADMIN} {exc.message}")) \
            from None


def administered(request) -> list:
    """The repositories whose overview the viewer may see: every one for a server admin,
    those they hold the admin permission on otherwise."""
    identity = request.identity
    if identity is None:
        return []
    if identity.admin and identity.token is None:
        return list(request.repositories)
    return [r for r in request.repositories
            if request.access.may_somewhere(identity, r, ADMIN)]


def admin_nav_url(request) -> str | None:
    """Where the header's "Admin" link goes, or None: no link for whoever may not use
    the pages (a non-admin never sees it)."""
    if request.identity is None:
        return None
    return admin_url(request) if administered(request) else None


def page(request, section: str, **data) -> dict:
    identity = request.identity
    sections = SECTIONS if identity.admin and identity.token is None else SECTIONS[:1]
    return {"sections": [(label, admin_url(request, path), label == section)
                         for label, path in sections],
            "admin_url": admin_url(request), "read_only": request.access.backend.name != "sql",
            "errors": {}, "form": {}, **data}


def refused(request, exc: Refused, data: dict, field: str | None = None) -> dict:
    """The form again with the reason, under the refusal's status."""
    request.response.status = exc.status
    request.response.cache_control = NO_STORE
    # Read-only pages show no form: the reason goes above the list.
    field = "form" if data["read_only"] else field
    return {**data, "errors": {field or "form": exc.message}}


def done(request, path: str, key: str, name: str):
    response = see_other(admin_url(request, path))
    set_flash(request, response, "success", DONE[key].format(name))
    return response


def answers(view):
    """Views raise Answer for "you may not"; the answer is given as it is."""
    def wrapped(request):
        try:
            return view(request)
        except Answer as exc:
            return exc.response

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


# --- the repositories' overview -------------------------------------------------------------


@view_config(route_name="admin_noslash")
def admin_noslash(request):
    return redirect(request, "/admin/")


@view_config(route_name="admin", request_method=READS, renderer="ui/admin_repositories.html")
@answers
def repositories(request):
    shown = administered(request)
    if not shown:
        if request.identity is None:
            return challenge(request)
        return error_response(request, 403, "Only administrators of a repository may see "
                                            "this page.")
    return page(request, "Repositories",
                repositories=repository_overview(request.work, shown))


# --- users ----------------------------------------------------------------------------------


def users_data(request, admin, who, **extra) -> dict:
    return page(request, "Users", users=admin.users(who), **extra)


@view_config(route_name="admin_users", request_method=READS, renderer="ui/admin_users.html")
@answers
def users(request):
    admin, who = _server_admin(request)
    return users_data(request, admin, who)


@view_config(route_name="admin_users", request_method="POST", renderer="ui/admin_users.html")
@answers
def add_user(request):
    admin, who = _server_admin(request)
    form = small_form(request)
    name = form.get("name", "").strip()
    password, again = form.get("password", ""), form.get("password_again", "")
    data = users_data(request, admin, who, form={"name": name, "admin": "admin" in form})
    if password != again:
        return refused(request, Refused(400, "The two passwords differ."), data,
                       "password_again")
    try:
        admin.add_user(who, {"name": name, "password": password or None,
                             "admin": "admin" in form})
    except Refused as exc:
        return refused(request, exc, data, "password" if "password" in exc.message.lower()
                       else "name")
    return done(request, "/users", "user-added", name)


def _user(request, admin, who) -> dict:
    try:
        return admin.user(who, request.matchdict["name"])
    except Refused as exc:
        raise Answer(error_response(request, exc.status, exc.message)) from None


def user_data(request, admin, who, **extra) -> dict:
    found = _user(request, admin, who)
    base = admin_url(request, "/users/" + quote(found["name"], safe=""))
    return page(request, "Users", account=found, user_url=base,
                may_change=not (request.access.backend.name != "sql"
                                or found["source"] == "ini"), **extra)


@view_config(route_name="admin_user", request_method=READS, renderer="ui/admin_user.html")
@answers
def user(request):
    admin, who = _server_admin(request)
    return user_data(request, admin, who)


@view_config(route_name="admin_user_action", request_method=READS,
             renderer="ui/confirm.html")
@answers
def user_confirm(request):
    admin, who = _server_admin(request)
    data = user_data(request, admin, who)
    name = data["account"]["name"]
    return confirmation(request, data["user_url"], f"user {name}",
                        f"Remove the user {name}? They can no longer sign in, and their "
                        "API tokens stop working.")


def confirmation(request, here: str, what: str, question: str):
    """The page that asks before <here>/remove (for a browser without JavaScript); the
    URL of another action, which only a POST does, leads to the thing's page."""
    if request.matchdict["action"] != "remove":
        return see_other(here)
    return {"title": f"Remove {what}", "action": here + "/remove", "question": question,
            "button": f"Remove the {what.split()[0]}", "hidden": (), "cancel_url": here}


@view_config(route_name="admin_user_action", request_method="POST",
             renderer="ui/admin_user.html")
@answers
def change_user(request):
    admin, who = _server_admin(request)
    name, action = request.matchdict["name"], request.matchdict["action"]
    form = small_form(request)
    data = user_data(request, admin, who)
    try:
        if action == "remove":
            admin.remove_user(who, name)
            return done(request, "/users", "user-removed", name)
        if action == "admin":
            wanted = form.get("admin") == "on"
            admin.change_user(who, name, {"admin": wanted})
            return done(request, "/users/" + quote(name, safe=""),
                        "admin-on" if wanted else "admin-off", name)
        password = form.get("password", "")
        if "remove" not in form and password != form.get("password_again", ""):
            raise Refused(400, "The two passwords differ.")
        if "remove" not in form and not password:
            raise Refused(400, "Enter the new password (twice).")
        admin.change_user(who, name, {"password": None if "remove" in form else password})
        return done(request, "/users/" + quote(name, safe=""),
                    "password-removed" if "remove" in form else "password-set", name)
    except Refused as exc:
        return refused(request, exc, data, "password" if action == "password" else None)


# --- groups ---------------------------------------------------------------------------------


def groups_data(request, admin, who, **extra) -> dict:
    return page(request, "Groups", groups=admin.groups(who), **extra)


@view_config(route_name="admin_groups", request_method=READS, renderer="ui/admin_groups.html")
@answers
def groups(request):
    admin, who = _server_admin(request)
    return groups_data(request, admin, who)


@view_config(route_name="admin_groups", request_method="POST",
             renderer="ui/admin_groups.html")
@answers
def add_group(request):
    admin, who = _server_admin(request)
    name = small_form(request).get("name", "").strip()
    data = groups_data(request, admin, who, form={"name": name})
    try:
        admin.add_group(who, {"name": name})
    except Refused as exc:
        return refused(request, exc, data, "name")
    return done(request, "/groups/" + quote(name, safe=""), "group-added", name)


def group_data(request, admin, who, **extra) -> dict:
    try:
        found = admin.group(who, request.matchdict["name"])
    except Refused as exc:
        raise Answer(error_response(request, exc.status, exc.message)) from None
    backend = request.access.backend
    ini = set(backend.base.groups.get(found["name"], ())) if backend.name == "sql" \
        else set(found["members"])
    others = [(u["name"], u["name"]) for u in admin.users(who)
              if u["name"] not in found["members"]]
    return page(request, "Groups", group=found, ini_members=ini, candidates=others,
                group_url=admin_url(request, "/groups/" + quote(found["name"], safe="")),
                may_remove=backend.name == "sql" and found["source"] != "ini", **extra)


@view_config(route_name="admin_group", request_method=READS, renderer="ui/admin_group.html")
@answers
def group(request):
    admin, who = _server_admin(request)
    return group_data(request, admin, who)


@view_config(route_name="admin_group_action", request_method=READS,
             renderer="ui/confirm.html")
@answers
def group_confirm(request):
    admin, who = _server_admin(request)
    data = group_data(request, admin, who)
    name = data["group"]["name"]
    return confirmation(request, data["group_url"], f"group {name}",
                        f"Remove the group {name}? Its grants stop applying to its members.")


@view_config(route_name="admin_group_action", request_method="POST",
             renderer="ui/admin_group.html")
@answers
def change_group(request):
    admin, who = _server_admin(request)
    name, action = request.matchdict["name"], request.matchdict["action"]
    form = small_form(request)
    data = group_data(request, admin, who)
    member = form.get("user", "")
    try:
        if action == "remove":
            admin.remove_group(who, name)
            return done(request, "/groups", "group-removed", name)
        if form.get("do") == "remove":
            admin.remove_member(who, name, member)
            key = "member-removed"
        else:
            if not member:
                raise Refused(400, "Choose the user to add.")
            admin.add_member(who, name, member)
            key = "member-added"
    except Refused as exc:
        return refused(request, exc, data, "user")
    return done(request, "/groups/" + quote(name, safe=""), key, member)


# --- grants ---------------------------------------------------------------------------------


def grants_data(request, admin, who, **extra) -> dict:
    names = [r.name for r in request.repositories]
    wanted = request.GET.get("repository", "")
    listed = admin.grants(who)
    if wanted in names or wanted == ANYWHERE:
        # A repository's grants are its own and those for every repository (*).
        listed = [g for g in listed if g["repository"] in (wanted, ANYWHERE)]
    else:
        wanted = ""
    principals = ["everyone", "authenticated"] \
        + [f"group:{g['name']}" for g in admin.groups(who)] \
        + [u["name"] for u in admin.users(who)]
    return page(request, "Grants", grants=listed, filter=wanted,
                repository_options=[(ANYWHERE, "every repository (*)")]
                + [(n, n) for n in names],
                permission_options=[(p, p) for p in PERMISSIONS],
                principal_options=[(p, p) for p in principals], **extra)


@view_config(route_name="admin_grants", request_method=READS, renderer="ui/admin_grants.html")
@answers
def grants(request):
    admin, who = _server_admin(request)
    return grants_data(request, admin, who)


@view_config(route_name="admin_grants", request_method="POST",
             renderer="ui/admin_grants.html")
@answers
def add_grant(request):
    admin, who = _server_admin(request)
    form = small_form(request)
    wanted = {key: form.get(key, "").strip()
              for key in ("repository", "pattern", "permission", "principal")}
    wanted["pattern"] = wanted["pattern"] or ANYWHERE
    data = grants_data(request, admin, who, form=wanted)
    try:
        made = admin.add_grant(who, wanted)
    except Refused as exc:
        message = exc.message.lower()
        field = next((f for f in ("repository", "pattern", "permission", "principal")
                      if f in message), None)
        if field is None and ("user" in message or "group" in message):
            field = "principal"
        return refused(request, exc, data, field)
    return done(request, "/grants", "grant-added", grant_text(made))


def grant_text(grant: dict) -> str:
    return (f"{grant['permission']} for {grant['principal']} on {grant['repository']}, "
            f"projects {grant['pattern']}")


def _grant(request, admin, who) -> dict:
    try:
        return admin.grant(who, int(request.matchdict["id"]))
    except Refused as exc:
        raise Answer(error_response(request, exc.status, exc.message)) from None


@view_config(route_name="admin_grant_remove", request_method=READS,
             renderer="ui/confirm.html")
@answers
def grant_confirm(request):
    admin, who = _server_admin(request)
    found = _grant(request, admin, who)
    return {"title": "Remove the grant", "action": request.path,
            "question": f"Remove the grant: {grant_text(found)}?", "button": "Remove",
            "hidden": (), "cancel_url": admin_url(request, "/grants")}


@view_config(route_name="admin_grant_remove", request_method="POST")
@answers
def remove_grant(request):
    admin, who = _server_admin(request)
    found = _grant(request, admin, who)
    try:
        admin.remove_grant(who, found["id"])
    except Refused as exc:
        return error_response(request, exc.status, exc.message)
    return done(request, "/grants", "grant-removed", grant_text(found))
