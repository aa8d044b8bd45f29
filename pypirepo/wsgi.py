"""What every request passes before the router: URLs that can be read at all.

A WSGI server hands the path over percent-decoded, as bytes in a latin-1 str (PEP 3333),
and the query string as sent. Pyramid's router and WebOb's GET decode them as UTF-8 and
raise on anything else, which would be a 500 with a traceback for a client's typo or
a scanner's probe. Here they are a 400 that says why, before the router is reached.
Only a path that is not plain ASCII, or a query string, is looked at twice: the check
costs nothing on the URLs clients send most (index pages and files have no query).
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

# A query string as RFC 3986 allows it, escapes aside: printable ASCII, no space. Views
# copy it into a redirect's Location, where a control character has no place.
_PLAIN_QUERY = re.compile(r"[!-~]*")


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
            raw = path.encode("utf-8", "surrogatepass")
        if not _utf8(raw):
            return "Invalid URL: the path is not UTF-8 once percent-decoded."
    query = environ.get("QUERY_STRING", "")
    if query and not _PLAIN_QUERY.fullmatch(query):
        return "Invalid URL: the query string holds a space, a control or a non-ASCII " \
               "character; escape it."
    if "%" in query and not _utf8(unquote_to_bytes(query)):
        return "Invalid URL: the query string is not UTF-8 once percent-decoded."
    return None


class ReadableURLs:
    """WSGI middleware: a 400 for a URL that does not decode, anything else passes."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        query = environ.get("QUERY_STRING")
        if environ.get("PATH_INFO", "").isascii() and not query:
            return self.app(environ, start_response)  # every URL a client sends
        problem = url_problem(environ)
        if problem is None:
            return self.app(environ, start_response)
        body = (problem + "\n").encode()
        start_response(f"400 {problem}", [("Content-Type", "text/plain; charset=utf-8"),
                                          ("Content-Length", str(len(body)))])
        return [body]
