"""Reading an upstream project page: PEP 691 JSON, or PEP 503 HTML for older indexes.

Both come out as the same list of plain dicts (what the database keeps):

    filename, url (absolute, upstream's), sha256, requires_python, yanked (False, True or
    a reason), core_metadata (a sha256 hex, True, or None), size (int or None),
    upload_time (RFC 3339 with Z, or None)

Only wheels and sdists of the requested project with a sha256 are kept: a file we
cannot verify is never served (an empty hash fragment would even make pip compare
against an empty digest), and a file named for another project is never listed under
this one.

A page is the upstream's word, not ours: an entry whose fields have the wrong type or an
impossible value (a size of Infinity, a year 9999 in another time zone, a URL that does
not parse, a requires-python longer than the database column) is skipped, and each page
says in one log line how many entries it lost and why. A page that is not a page at all
(no `files` list, nesting past the parser's depth) is a PageFormatError. At most
`max_files` entries are kept, the newest by upload-time: the JSON is read one entry at a
time, so a page of a million files costs the memory of the ones kept, not of a million.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
import logging
import re
from collections import Counter, deque
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit

from .. import names
from ..models import File
from ..records import format_time, parse_time
from .network import mask_url

log = logging.getLogger(__name__)

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPES = ("text/html", "application/vnd.pypi.simple.v1+html")
# What we ask for: JSON first, HTML for indexes that only speak PEP 503.
ACCEPT = (f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01")
# pypi.upstream_max_page_files: far more than the biggest real project's files.
DEFAULT_MAX_FILES = 100_000

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
# Printable ASCII: what a URL on a page may hold (no spaces or line breaks, which a
# redirect's Location header would carry on).
_URL_CHARS = re.compile(r"^[\x21-\x7e]+$")
_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
# The columns a cached file's values go into.
_MAX_VERSION = File.__table__.c.version.type.length
_MAX_REQUIRES_PYTHON = File.__table__.c.requires_python.type.length
_MAX_SIZE = 2**63 - 1
_FIRST_YEAR = 1970
# Files no client of ours installs (eggs, installers, .tar.bz2 ...): old projects' pages
# are full of them, so they are left out without a word, as are anchors without a link.
_OTHER_KIND = "not a wheel or sdist"
_NO_LINK = "not a link"
_QUIET = (_OTHER_KIND, _NO_LINK)


class PageFormatError(ValueError):
    """The upstream answered 200 with something that is not a simple page."""


class _Bad(ValueError):
    """One entry is unusable; the text is the reason, counted for the page's log line."""


def parse_page(body: bytes | bytearray, content_type: str, page_url: str, project: str,
               max_files: int = DEFAULT_MAX_FILES) -> list[dict]:
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if ctype == JSON_TYPE or ctype == "application/json":
        entries, total = _json_entries(body, max_files)
        convert = _from_json
    elif ctype in HTML_TYPES or not ctype:
        entries, total, base = _html_anchors(body, page_url, max_files)
        page_url, convert = base, _from_html
    else:
        raise PageFormatError(f"unexpected Content-Type {content_type!r}")
    skipped: Counter = Counter()
    files = []
    for raw in entries:
        try:
            files.append(_check(convert(raw, page_url), project))
        except _Bad as exc:
            skipped[str(exc)] += 1
    _report(project, page_url, total, len(entries), skipped, max_files)
    return files


def _report(project: str, page_url: str, total: int, read: int, skipped: Counter,
            max_files: int) -> None:
    """One line per page for what it lost: never one per entry."""
    quiet = sum(skipped.pop(why, 0) for why in _QUIET)
    parts = []
    if skipped:
        reasons = ", ".join(f"{n} {why}" for why, n in skipped.most_common())
        parts.append(f"{sum(skipped.values())} of {read} entries skipped ({reasons})")
    if total > read:
        parts.append(f"it lists {total} files, of which only the newest {read} are kept "
                     f"(pypi.upstream_max_page_files)")
    if parts:
        log.warning("upstream page of %s (%s): %s", project, mask_url(page_url),
                    "; ".join(parts))
    elif quiet:
        log.debug("upstream page of %s: %d links to other kinds of files left out", project,
                  quiet)


def _check(entry: dict, project: str) -> dict:
    filename = entry["filename"]
    try:
        dist = names.parse_filename(filename)
    except names.InvalidFilename:
        if filename.endswith((".whl", *names.SDIST_EXTENSIONS)):
            raise _Bad("invalid filename") from None
        raise _Bad(_OTHER_KIND) from None
    if dist.project != project:
        raise _Bad("named for another project")
    if len(dist.version) > _MAX_VERSION:
        raise _Bad("invalid filename")
    sha256 = entry["sha256"]
    if not isinstance(sha256, str) or not _HEX64.match(sha256):
        raise _Bad("no valid sha256")
    entry["sha256"] = sha256.lower()
    if dist.packagetype != names.WHEEL:
        # Never advertised for an sdist: its PKG-INFO is not the metadata of what gets
        # installed, and the public index only offers it for wheels.
        entry["core_metadata"] = None
    return entry


# --- the fields, as both formats give them ---------------------------------------------------

def _filename(value) -> str:
    if not isinstance(value, str) or not value:
        raise _Bad("invalid filename")
    return value


def _url(base: str, href) -> tuple[str, str]:
    """(absolute URL without its fragment, the fragment)."""
    if not isinstance(href, str) or not href:
        raise _Bad("invalid URL")
    try:
        # The public index's file URLs are absolute: no join to parse them twice for.
        url = href if href.startswith(("https://", "http://")) else urljoin(base, href)
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not one
    except ValueError:
        raise _Bad("invalid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname \
            or not _URL_CHARS.match(url):
        raise _Bad("invalid URL")
    if parts.fragment:
        url = url.partition("#")[0]
    return url, parts.fragment


def _upload_time(value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise _Bad("invalid upload-time")
    try:
        when = parse_time(value)
    except (ValueError, OverflowError):
        raise _Bad("invalid upload-time") from None
    if not _FIRST_YEAR <= when.year < dt.MAXYEAR:
        raise _Bad("invalid upload-time")
    return format_time(when)


def _size(value) -> int | None:
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= _MAX_SIZE:
        raise _Bad("invalid size")
    return value


def _requires_python(value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _MAX_REQUIRES_PYTHON:
        raise _Bad("invalid requires-python")
    return value if value.strip() else None


def _yanked(value) -> bool | str:
    if isinstance(value, str):
        return value or True
    if isinstance(value, bool) or value is None:
        return bool(value)
    raise _Bad("invalid yanked")


# --- PEP 691 JSON ----------------------------------------------------------------------------

def _core_metadata_json(value) -> str | bool | None:
    if isinstance(value, dict):
        digest = value.get("sha256")
        return digest.lower() if isinstance(digest, str) and _HEX64.match(digest) else True
    return True if value is True else None


def _from_json(f, page_url: str) -> dict:
    if not isinstance(f, dict):
        raise _Bad("not an object")
    filename = _filename(f.get("filename"))
    url, _ = _url(page_url, f.get("url"))
    hashes = f.get("hashes")
    meta = f.get("core-metadata", f.get("dist-info-metadata",
                                        f.get("data-dist-info-metadata")))
    return {
        "filename": filename,
        "url": url,
        "sha256": hashes.get("sha256") if isinstance(hashes, dict) else None,
        "requires_python": _requires_python(f.get("requires-python")),
        "yanked": _yanked(f.get("yanked", False)),
        "core_metadata": _core_metadata_json(meta),
        "size": _size(f.get("size")),
        "upload_time": _upload_time(f.get("upload-time")),
    }


def _json_entries(body: bytes | bytearray, keep: int) -> tuple[list, int]:
    """(the entries of the page's `files` list, at most `keep` of them, the newest by
    upload-time, in page order; how many it has)."""
    try:
        text = body.decode("utf-8")
        return _object(text, keep)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError, JSONDecodeError
        raise PageFormatError(f"not a PEP 691 page: {_short(exc)}") from None


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:200] + "..."


def _object(text: str, keep: int) -> tuple[list, int]:
    """The page's top-level object, read key by key; every value but `files` is decoded
    and dropped, `files` is read entry by entry."""
    ws, decode = _WS.match, _DECODER.raw_decode
    i = ws(text).end()
    if text[i:i + 1] != "{":
        raise ValueError("not a JSON object")
    i = ws(text, i + 1).end()
    found = None
    closed = text[i:i + 1] == "}"
    if closed:
        i += 1
    while not closed:
        key, i = decode(text, i)
        if not isinstance(key, str):
            raise ValueError(f"expected a key at {i}")
        i = ws(text, i).end()
        if text[i:i + 1] != ":":
            raise ValueError(f"expected ':' at {i}")
        i = ws(text, i + 1).end()
        if key == "files":
            found, i = _files(text, i, keep)
        else:
            _, i = decode(text, i)
        i = ws(text, i).end()
        mark = text[i:i + 1]
        i = ws(text, i + 1).end()
        if mark == "}":
            closed = True
        elif mark != ",":
            raise ValueError(f"expected ',' or '}}' at {i}")
    if ws(text, i).end() != len(text):
        raise ValueError("extra data after the page")
    if found is None:
        raise ValueError("no 'files' list")
    return found


def _files(text: str, i: int, keep: int) -> tuple[tuple[list, int], int]:
    ws, decode = _WS.match, _DECODER.raw_decode
    if text[i:i + 1] != "[":
        raise ValueError("'files' is not a list")
    i = ws(text, i + 1).end()
    held: list = []
    newest: list | None = None  # a heap once there are more than `keep`
    total = 0
    if text[i:i + 1] == "]":
        return ([], 0), i + 1
    while True:
        value, i = decode(text, i)
        if newest is not None:
            heapq.heappushpop(newest, (_age(value), total, value))
        elif len(held) < keep:
            held.append(value)
        else:
            newest = [(_age(v), n, v) for n, v in enumerate(held)]
            heapq.heapify(newest)
            held = []
            heapq.heappushpop(newest, (_age(value), total, value))
        total += 1
        i = ws(text, i).end()
        mark = text[i:i + 1]
        i = ws(text, i + 1).end()
        if mark == "]":
            break
        if mark != ",":
            raise ValueError(f"expected ',' or ']' at {i}")
    if newest is not None:
        held = [v for _, _, v in sorted(newest, key=lambda t: t[1])]
    return (held, total), i


def _age(value) -> str:
    stamp = value.get("upload-time") if isinstance(value, dict) else None
    return stamp if isinstance(stamp, str) else ""


# --- PEP 503 HTML ----------------------------------------------------------------------------

class _Anchors(HTMLParser):
    def __init__(self, keep: int):
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.anchors: deque = deque(maxlen=keep)  # no upload times here: the last ones
        self.total = 0

    def handle_starttag(self, tag, attrs):
        if tag == "base" and self.base is None:
            href = dict(attrs).get("href")
            if href:
                self.base = href
        elif tag == "a":
            self.anchors.append(dict(attrs))
            self.total += 1


def _html_anchors(body: bytes | bytearray, page_url: str, keep: int) -> tuple[list, int, str]:
    parser = _Anchors(keep)
    parser.feed(body.decode("utf-8", "replace"))
    parser.close()
    base = page_url
    if parser.base:
        try:
            base = urljoin(page_url, parser.base)
        except ValueError:
            raise PageFormatError("its <base href> is not a URL") from None
    return list(parser.anchors), parser.total, base


def _core_metadata_html(value: str | None) -> str | bool | None:
    if value is None:
        return None
    value = value.strip()
    if value.lower() == "true":
        return True
    algo, sep, digest = value.partition("=")
    if sep and algo.lower() == "sha256" and _HEX64.match(digest):
        return digest.lower()
    # Any other value means "present, hash unknown" to pip; "false" is a server bug.
    return None if value.lower() == "false" else True


def _from_html(a: dict, base: str) -> dict:
    if not a.get("href"):
        raise _Bad(_NO_LINK)
    url, fragment = _url(base, a["href"])
    filename = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    sha256 = None
    for part in fragment.split("&"):
        algo, _, digest = part.partition("=")
        if algo == "sha256":
            sha256 = digest
    # A bare data-yanked attribute parses as None; pip reads that as not yanked, but
    # the index clearly meant to yank, so err on the side of the flag.
    yanked = (a["data-yanked"] or True) if "data-yanked" in a else False
    size = a.get("data-size")
    if size is not None:
        size = int(size) if size.isdigit() and size.isascii() else -1
    meta = a.get("data-core-metadata", a.get("data-dist-info-metadata"))
    return {
        "filename": _filename(filename),
        "url": url,
        "sha256": sha256,
        "requires_python": _requires_python(a.get("data-requires-python")),
        "yanked": yanked,
        "core_metadata": _core_metadata_html(meta),
        "size": _size(size),
        "upload_time": _upload_time(a.get("data-upload-time")),
    }
