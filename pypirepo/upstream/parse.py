"""Reading an upstream project page: PEP 691 JSON, or PEP 503 HTML for older indexes.

Both come out as the same list of plain dicts (what the database keeps):

    filename, url (absolute, upstream's), sha256, requires_python, yanked (False, True or
    a reason), core_metadata (a sha256 hex, True, or None), size (int or None),
    upload_time (RFC 3339 with Z, or None)

Only wheels and sdists of the requested project with a sha256 are kept: a file we
cannot verify is never served (an empty hash fragment would even make pip compare
against an empty digest), and a file named for another project is never listed under
this one.
"""

from __future__ import annotations

import json
import logging
import re
from html.parser import HTMLParser
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

from .. import names
from ..records import format_time, parse_time

log = logging.getLogger(__name__)

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPES = ("text/html", "application/vnd.pypi.simple.v1+html")
# What we ask for: JSON first, HTML for indexes that only speak PEP 503.
ACCEPT = (f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01")

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


class PageFormatError(ValueError):
    """The upstream answered 200 with something that is not a simple page."""


def parse_page(body: bytes, content_type: str, page_url: str, project: str) -> list[dict]:
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if ctype == JSON_TYPE or ctype == "application/json":
        files = _from_json(body, page_url)
    elif ctype in HTML_TYPES or not ctype:
        files = _from_html(body, page_url)
    else:
        raise PageFormatError(f"unexpected Content-Type {content_type!r}")
    return [f for f in (_check(f, project) for f in files) if f is not None]


def _check(entry: dict, project: str) -> dict | None:
    filename = entry["filename"]
    try:
        dist = names.parse_filename(filename)
    except names.InvalidFilename:
        return None  # eggs, installers, .tar.bz2 ...: no client of ours installs them
    if dist.project != project:
        log.warning("upstream page of %s lists %s, which belongs to %s; ignored",
                    project, filename, dist.project)
        return None
    if not entry.get("sha256") or not _HEX64.match(entry["sha256"]):
        log.info("upstream file %s has no sha256; not listed", filename)
        return None
    entry["sha256"] = entry["sha256"].lower()
    if dist.packagetype != names.WHEEL:
        # Never advertised for an sdist: its PKG-INFO is not the metadata of what gets
        # installed, and the public index only offers it for wheels.
        entry["core_metadata"] = None
    return entry


def _upload_time(value) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return format_time(parse_time(value))
    except ValueError:
        return None


def _size(value) -> int | None:
    try:
        size = int(value)
    except (TypeError, ValueError):
        return None
    return size if size >= 0 else None


def _core_metadata_json(value) -> str | bool | None:
    if isinstance(value, dict):
        digest = value.get("sha256")
        return digest.lower() if isinstance(digest, str) and _HEX64.match(digest) else True
    return True if value is True else None


def _from_json(body: bytes, page_url: str) -> list[dict]:
    try:
        data = json.loads(body)
        files = data["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise PageFormatError(f"not a PEP 691 page: {exc}") from None
    out = []
    for f in files:
        if not isinstance(f, dict) or not isinstance(f.get("filename"), str) \
                or not isinstance(f.get("url"), str):
            continue
        hashes = f.get("hashes") if isinstance(f.get("hashes"), dict) else {}
        meta = f.get("core-metadata", f.get("dist-info-metadata",
                                            f.get("data-dist-info-metadata")))
        yanked = f.get("yanked", False)
        yanked = (yanked or True) if isinstance(yanked, str) else bool(yanked)
        rp = f.get("requires-python")
        out.append({
            "filename": f["filename"],
            "url": urldefrag(urljoin(page_url, f["url"]))[0],
            "sha256": hashes.get("sha256"),
            "requires_python": rp if isinstance(rp, str) and rp.strip() else None,
            "yanked": yanked,
            "core_metadata": _core_metadata_json(meta),
            "size": _size(f.get("size")),
            "upload_time": _upload_time(f.get("upload-time")),
        })
    return out


class _Anchors(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.anchors: list[dict] = []

    def handle_starttag(self, tag, attrs):
        if tag == "base" and self.base is None:
            href = dict(attrs).get("href")
            if href:
                self.base = href
        elif tag == "a":
            self.anchors.append(dict(attrs))


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


def _from_html(body: bytes, page_url: str) -> list[dict]:
    parser = _Anchors()
    parser.feed(body.decode("utf-8", "replace"))
    parser.close()
    base = urljoin(page_url, parser.base) if parser.base else page_url
    out = []
    for a in parser.anchors:
        href = a.get("href")
        if not href:
            continue
        url, fragment = urldefrag(urljoin(base, href))
        filename = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        sha256 = None
        for part in fragment.split("&"):
            algo, _, digest = part.partition("=")
            if algo == "sha256":
                sha256 = digest
        # A bare data-yanked attribute parses as None; pip reads that as not yanked, but
        # the index clearly meant to yank, so err on the side of the flag.
        if "data-yanked" in a:
            yanked = a["data-yanked"] or True
        else:
            yanked = False
        rp = a.get("data-requires-python")
        meta = a.get("data-core-metadata", a.get("data-dist-info-metadata"))
        out.append({
            "filename": filename,
            "url": url,
            "sha256": sha256,
            "requires_python": rp if rp and rp.strip() else None,
            "yanked": yanked,
            "core_metadata": _core_metadata_html(meta),
            "size": _size(a.get("data-size")),
            "upload_time": _upload_time(a.get("data-upload-time")),
        })
    return out
