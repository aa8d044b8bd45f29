"""Who a request says it is: the Authorization header read once, checked by the access
backend. The security policy and the views both ask the request (request.py), which asks
this; nothing here knows about Pyramid's policy."""

from __future__ import annotations

import base64
import binascii

from .model import MAX_PASSWORD, MAX_USER
from .throttle import Throttled


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


INVALID_LOGIN = "Invalid username or password."


def resolve_credentials(request, access):
    """(Identity or None, error) for the request, checked by the access service; the error
    is a message, or Throttled (too many failed logins: 429)."""
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
    try:
        identity = access.identify(*pair, address=request.remote_addr)
    except Throttled as exc:
        return None, exc
    if identity is None:
        return None, INVALID_LOGIN
    return identity, None
