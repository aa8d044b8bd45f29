"""Thin views: parse, authorize (Pyramid does it from the resource ACLs), call a service,
render. Helpers shared by the views live here."""

from __future__ import annotations

import json
from urllib.parse import quote

from pyramid.response import Response

JSON_ERROR_OFFERS = ["text/plain", "application/json"]

# (Configurator method, view, its settings) in the order the modules declare them.
_DECLARED: list[tuple[str, object, dict]] = []


def view_config(**settings):
    """Pyramid's @view_config, without venusian's scan.

    A scan looks up each decorated function's module with inspect.getmodule, which walks
    every loaded module: 0.1 s of a 1 s start-up. These decorators only note the view;
    includeme() adds them. route_name may be a tuple: the view answers each of those
    routes (a repository's classic URL and its /r/<name>/ form, routes.repository_routes).
    """
    return _declare("add_view", settings)


def forbidden_view_config(**settings):
    return _declare("add_forbidden_view", settings)


def notfound_view_config(**settings):
    return _declare("add_notfound_view", settings)


def _declare(method: str, settings: dict):
    routes = settings.get("route_name")

    def declare(fn):
        if isinstance(routes, tuple):
            for route in routes:
                _DECLARED.append((method, fn, dict(settings, route_name=route)))
        else:
            _DECLARED.append((method, fn, settings))
        return fn

    return declare


def includeme(config):
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    from ..interfaces import IRenderer
    from ..paths import resource_dir

    env = Environment(loader=FileSystemLoader(str(resource_dir("templates"))),
                      autoescape=select_autoescape(["html"]), trim_blocks=False)
    env.filters["filesize"] = filesize
    config.registry.registerUtility(lambda name, data: env.get_template(name).render(**data),
                                    IRenderer)
    config.include(".ui")
    from . import admin, errors, files, jsonapi, manage, simple, upload  # noqa: F401

    for method, fn, settings in _DECLARED:
        getattr(config, method)(fn, **settings)


def filesize(size: int) -> str:
    """A size as people read it (SI units, as the public index shows them)."""
    if size < 1000:
        return f"{size} bytes"
    for unit in ("kB", "MB", "GB"):
        size /= 1000
        if size < 1000 or unit == "GB":
            break
    return f"{size:.1f} {unit}"


IMMUTABLE = "max-age=365000000, immutable"


def immutable_cache_control(request, project: str | None = None) -> str:
    """Files never change under their URL; `private` where reading needs a login."""
    public = request.access.anonymous_may_read(request.repository, project)
    return IMMUTABLE if public else "private, " + IMMUTABLE


def metadata_response(request, body: bytes, project: str | None = None) -> Response:
    """A wheel's METADATA (PEP 658), ours or fetched from the upstream."""
    response = Response(body=body, content_type="text/plain", charset="utf-8",
                        conditional_response=True)
    response.cache_control = immutable_cache_control(request, project)
    return response


def _reason(message: str) -> str:
    # A status line is one line of ISO-8859-1 (warehouse does the same replacement).
    line = " ".join(message.split())
    return line.encode("iso-8859-1", "replace").decode("iso-8859-1")[:400]


def error_response(request, status: int, message: str, headers=None) -> Response:
    """A 4xx/5xx whose reason phrase and body both carry the message.

    twine prints the reason phrase; uv prints the JSON `code` or the body (HTTP/2 has no
    reason phrase); poetry prints both. JSON when the client prefers it, else plain text;
    a browser loading a page gets the site's error page (clients never look like one).
    """
    from .ui.errors import page_for_browser  # imported here: views.ui imports this module

    status_line = f"{status} {_reason(message)}"
    page = page_for_browser(request, status_line, status, message, headers)
    if page is not None:
        return page
    offers = request.accept.acceptable_offers(JSON_ERROR_OFFERS) if "Accept" in request.headers \
        else []
    if offers and offers[0][0] == "application/json":
        body = json.dumps({"message": message, "code": status_line, "title": status_line})
        response = Response(body=body.encode(), status=status_line,
                            content_type="application/json", charset="utf-8")
    else:
        response = Response(body=(message + "\n").encode(), status=status_line,
                            content_type="text/plain", charset="utf-8")
    for k, v in (headers or {}).items():
        response.headers[k] = v
    return response


# What a path may keep unescaped in a Location header (RFC 3986 pchar and "/").
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


def challenge(request, message: str = "Authentication required.") -> Response:
    """A 401 with the Basic challenge: pip and uv send credentials (keyring's included)
    only after one."""
    return error_response(request, 401, message,
                          {"WWW-Authenticate": f'Basic realm="{request.app_config.realm}"'})


def missing(request, exc, message: str, as_json: bool = False) -> Response:
    """The answer for a project (or its file, version) that does not exist, or that the
    caller may not read: the same 404 either way, so a private name is never revealed;
    a 401 instead when nobody is logged in and the name is not public (they may be able
    to read it once logged in, so the client is asked for credentials)."""
    if getattr(exc, "anonymous", False):
        return challenge(request)
    if as_json:
        return json_response({"message": "Not Found"}, 404)
    return error_response(request, 404, message)


def redirect(request, path: str, status: int = 301) -> Response:
    # Parts of the path come from the request (a version in /pypi/<name>/<version>/json):
    # escaped, a NUL or a non-latin-1 character cannot break the header.
    location = request.script_name + quote(path, safe=_PATH_SAFE)
    if request.query_string:
        location += "?" + request.query_string
    response = Response(status=status, location=location)
    response.vary = ("Accept",)
    return response


def json_body(request) -> dict:
    """The request's JSON object ({} without a body); Refused (400) for anything else."""
    from ..errors import Refused

    if not request.body:
        return {}
    try:
        payload = request.json_body
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deep
        raise Refused(400, "The body must be JSON (an object).") from None
    if not isinstance(payload, dict):
        raise Refused(400, "The body must be JSON (an object).")
    return payload


def json_response(data, status: int = 200) -> Response:
    return Response(body=json.dumps(data).encode(), status=status,
                    content_type="application/json", charset="utf-8")
