"""Signing in and out (/login, /logout), and the account page (/account): the password
and API tokens. Sessions, CSRF and the throttle are pypirepo.access's; these views only
read forms and render answers."""

from __future__ import annotations

from pyramid.httpexceptions import HTTPSeeOther

from ...access import MAX_PASSWORD, MAX_USER, Throttled
from ...access.account import (
    TOKEN_LIFETIMES,
    FormErrors,
    change_password,
    may_manage,
    token_request,
)
from ...access.identity import INVALID_LOGIN
from ...access.session import small_form
from ...routes import READS
from .. import error_response, view_config

NO_STORE = "no-store"  # pages that show a secret or a password form's answer


def local_path(request, value: str | None) -> str:
    """Where to go after signing in: a path on this site, never another host (no open
    redirect through //host or /\\host); the home page otherwise."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")) \
            and len(value) <= 2000 and value.isprintable():
        return value
    return request.script_name + "/"


def see_other(location: str) -> HTTPSeeOther:
    response = HTTPSeeOther(location=location)
    response.cache_control = NO_STORE
    return response


# --- signing in and out ---------------------------------------------------------------------


@view_config(route_name="login", request_method=READS, renderer="ui/login.html")
def login_page(request):
    data = {"next_url": local_path(request, request.GET.get("next")), "username": ""}
    identity = request.identity
    if identity is not None:
        return {**data, "signed_in": identity}
    data["login_token"] = request.sessions.login_form_token(request, request.response)
    return data


@view_config(route_name="login", request_method="POST", renderer="ui/login.html")
def login(request):
    sessions, form = request.sessions, small_form(request)
    username = form.get("username", "").strip()
    password = form.get("password", "")
    next_url = local_path(request, form.get("next"))

    def again(status: int, error: str, field: str | None = None):
        response = request.response
        response.status = status
        response.cache_control = NO_STORE
        return {"next_url": next_url, "username": username[:MAX_USER], "error": error,
                "field": field,
                "login_token": sessions.login_form_token(request, response)}

    if not sessions.login_form_ok(request):
        return again(403, "This sign-in form has expired, or it was not sent from this "
                          "site. Sign in again here.")
    if not username or not password:
        return again(400, "Enter your user name and your password.",
                     "username" if not username else "password")
    if len(username) > MAX_USER or len(password) > MAX_PASSWORD:
        return again(400, INVALID_LOGIN)
    try:
        identity = request.access.identify(username, password, address=request.remote_addr,
                                           tokens=False)
    except Throttled as exc:
        request.response.headers.update(exc.headers)
        return again(exc.status, exc.message)
    if identity is None:
        return again(200, INVALID_LOGIN)
    response = see_other(next_url)
    sessions.login(request, response, identity.user)
    return response


@view_config(route_name="logout", request_method="POST")
def logout(request):
    # A signed-in browser's token was checked before this view (access.session).
    response = see_other(request.script_name + "/")
    request.sessions.logout(request, response)
    return response


@view_config(route_name="logout", request_method=READS, renderer="ui/confirm.html")
def logout_page(request):
    """The sign-out button posts from every page's header; this page is for the URL
    typed in (a link can't sign out: a GET changes nothing)."""
    home = request.script_name + "/"
    return {"title": "Sign out", "question": "Sign out of this browser?",
            "action": request.script_name + "/logout", "button": "Sign out", "hidden": (),
            "cancel_url": home}


# --- the account page -------------------------------------------------------------------------


def account_data(request, **extra) -> dict:
    identity = request.identity
    store = request.access.tokens
    tokens = store.listed(identity.user) if store is not None and may_manage(identity) \
        else []
    return {
        "identity": identity,
        "may_manage": may_manage(identity),
        "tokens_available": store is not None,
        "tokens": tokens,
        "repository_options": [("*", "every repository")]
        + [(r.name, r.name) for r in request.repositories],
        "lifetime_options": [(key, f"in {days} days" if days else "never")
                             for key, days in TOKEN_LIFETIMES.items()],
        "errors": {},
        "form": {},
        **extra,
    }


def _signed_in(request):
    """The identity that may use the account page, or the answer to give instead."""
    identity = request.identity
    if identity is None:
        return None, see_other(f"{request.script_name}/login?next="
                               f"{request.script_name}/account")
    return identity, None


@view_config(route_name="account", request_method=READS, renderer="ui/account.html")
def account(request):
    identity, answer = _signed_in(request)
    return answer or account_data(request)


def _manage(request):
    identity, answer = _signed_in(request)
    if answer is None and not may_manage(identity):
        answer = error_response(request, 403, "Signed in with an API token: sign in with "
                                              "your password to change your account.")
    return identity, answer


@view_config(route_name="account_password", request_method="POST",
             renderer="ui/account.html")
def password(request):
    identity, answer = _manage(request)
    if answer is not None:
        return answer
    form, response = small_form(request), request.response
    response.cache_control = NO_STORE
    try:
        change = change_password(request.access, identity.user,
                                 form.get("current_password", ""),
                                 form.get("new_password", ""),
                                 form.get("new_password_again", ""), request.remote_addr)
    except FormErrors as exc:
        response.status = 400
        return account_data(request, errors=exc.errors)
    except Throttled as exc:
        response.status = exc.status
        response.headers.update(exc.headers)
        return account_data(request, errors={"current_password": exc.message})
    if not change.stored:
        return account_data(request, password_change=change,
                            bootstrap=identity.user == request.app_config.bootstrap_user)
    if identity.via == "session":
        # The new password ended every session of the user (their stamp): this browser
        # gets a new one, the others are signed out.
        request.sessions.login(request, response, identity.user)
    return account_data(request, flash_messages=[(
        "success", "Your password was changed. Other browsers signed in as you were "
                   "signed out.")])


@view_config(route_name="account_tokens", request_method="POST", renderer="ui/account.html")
def create_token(request):
    identity, answer = _manage(request)
    if answer is not None:
        return answer
    store = request.access.tokens
    if store is None:
        return error_response(request, 404, "API tokens are not available on this server.")
    response = request.response
    response.cache_control = NO_STORE
    try:
        form = small_form(request)
        wanted = token_request(form, {r.name for r in request.repositories})
    except FormErrors as exc:
        response.status = 400
        return account_data(request, errors=exc.errors, form=form)
    secret, info = store.create(identity.user, wanted.scope, wanted.expires, wanted.note)
    return account_data(request, new_token=secret, new_token_info=info)


@view_config(route_name="account_token_revoke", request_method="POST")
def revoke_token(request):
    identity, answer = _manage(request)
    if answer is not None:
        return answer
    store = request.access.tokens
    digits = request.matchdict["id"]
    token_id = int(digits) if len(digits) <= 18 else None  # what a database int holds
    info = store.get(token_id) if store is not None and token_id is not None else None
    if info is None or info.user != identity.user:
        return error_response(request, 404, "You have no such token.")
    store.revoke(token_id)
    return see_other(request.script_name + "/account#tokens")
