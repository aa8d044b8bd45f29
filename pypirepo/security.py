"""The Pyramid security policy: HTTP Basic on every request, identity resolved once."""

from __future__ import annotations

import base64
import binascii

from pyramid.authorization import ACLHelper
from pyramid.interfaces import ISecurityPolicy
from zope.interface import implementer

from .access import MAX_PASSWORD, MAX_USER


class BadCredentials(Exception):
    """An Authorization header we cannot read; answered with 401 and the reason."""


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """(user, password) from a Basic header; None when absent or empty (`Basic Og==`)."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise BadCredentials("Only Basic authentication is supported.")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCredentials("Malformed Basic credentials.") from None
    user, sep, password = decoded.partition(":")
    if not sep:
        raise BadCredentials("Malformed Basic credentials: no ':' between user and password.")
    if len(user) > MAX_USER or len(password) > MAX_PASSWORD:
        raise BadCredentials(f"Credentials too long: at most {MAX_USER} characters for a "
                             f"user name and {MAX_PASSWORD} for a password.")
    if not user and not password:
        return None  # hatch sends an empty pair; that is an anonymous request
    return user, password


@implementer(ISecurityPolicy)
class SecurityPolicy:
    def __init__(self, access):
        self.access = access
        self.acl = ACLHelper()

    def identity(self, request):
        # Pyramid caches nothing for us here; the request attribute does.
        return request.pypirepo_user

    def authenticated_userid(self, request):
        return request.pypirepo_user

    def permits(self, request, context, permission):
        if request.pypirepo_bad_credentials:
            return False
        if self.access.open_to_everyone(permission, context):
            return True  # the common anonymous read: no principals, no ACL walk
        principals = self.access.principals(request.pypirepo_user)
        return self.acl.permits(context, principals, permission)

    def remember(self, request, userid, **kw):
        return []

    def forget(self, request, **kw):
        return []


INVALID_LOGIN = "Invalid username or password."


def resolve_credentials(request):
    """(user, error) for the request."""
    if "HTTP_AUTHORIZATION" not in request.environ:
        return None, None  # anonymous: most reads, without WebOb's header mapping
    try:
        header = request.headers.get("Authorization")
    except UnicodeDecodeError:
        return None, "Malformed Authorization header."
    try:
        pair = parse_basic(header)
    except BadCredentials as exc:
        return None, str(exc)
    if pair is None:
        return None, None
    user = request.registry.access.authenticate(*pair)
    if user is None:
        return None, INVALID_LOGIN
    return user, None


def includeme(config):
    from .request import Request

    config.set_request_factory(Request)
    config.set_security_policy(SecurityPolicy(config.registry.access))
