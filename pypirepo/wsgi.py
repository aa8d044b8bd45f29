"""What every request passes before anything else: URLs that can be read at all.

A WSGI server hands the path over percent-decoded, as bytes in a latin-1 str (PEP 3333),
and the query string as sent. Pyramid's router and WebOb's GET decode them as UTF-8 and
raise on anything else, which would be a 500 with a traceback for a client's typo or
a scanner's probe. Here they are a 400 that says why, before the router is reached.
Only a path or query that is not plain ASCII (or has a % escape left in the query) is
looked at twice: the check costs nothing on the URLs clients send.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def url_problem(environ) -> str | None:
    """Why the request's URL cannot be decoded, or None when it can."""
    path = environ.get("PATH_INFO", "")
    if not path.isascii():
        try:
            raw = path.encode("latin-1")
        except UnicodeEncodeError:  # not from a PEP 3333 server; it is text already
            raw = path.encode("utf-8", "surrogateescape")
        if not _utf8(raw):
            return "Invalid URL: the path is not UTF-8 once percent-decoded."
    query = environ.get("QUERY_STRING", "")
    if query and ("%" in query or not query.isascii()):
        try:
            raw = unquote_to_bytes(query.encode("latin-1").replace(b"+", b" "))
        except UnicodeEncodeError:
            return "Invalid URL: the query string is not UTF-8 once percent-decoded."
        if not _utf8(raw):
            return "Invalid URL: the query string is not UTF-8 once percent-decoded."
    return None


class ReadableURLs:
    """WSGI middleware: a 400 for a URL that does not decode, anything else passes."""

    def __init__(self, app):
        self.app = app
        # The application's registry, as Pyramid's router offers it to whoever holds it.
        self.registry = getattr(app, "registry", None)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.isascii() and "%" not in environ.get("QUERY_STRING", ""):
            return self.app(environ, start_response)  # every URL a client sends
        problem = url_problem(environ)
        if problem is None:
            return self.app(environ, start_response)
        body = (problem + "\n").encode()
        start_response(f"400 {problem}", [("Content-Type", "text/plain; charset=utf-8"),
                                          ("Content-Length", str(len(body)))])
        return [body]
