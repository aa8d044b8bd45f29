"""The simple repository API's pages (PEP 503 HTML and PEP 691 JSON) as one dict each,
and the small cache that keeps them, rendered, until what they are built from changes.

Nothing here asks the database or storage: the repositories build a page's dict from
what they hold, the views render it (HTML through a template, JSON as it is).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import quote

from ..records import format_time

API_VERSION = "1.1"




@dataclass
class Page:
    """A rendered simple page, cached per process until its serial changes."""

    serial: int
    data: dict
    etag: str
    bodies: dict  # content type -> bytes, rendered on first use


class PageCache:
    """A small LRU of rendered pages keyed by (kind, name, url prefix).

    Each entry carries the version it was built at: the serial for our own pages, which
    a reader compares with the serial in the database, so a change by any process is
    seen at once; the fallback's pages use a token of everything they are built from.
    """

    def __init__(self, maxsize: int = 4096):
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.maxsize = maxsize

    def get(self, key, version):
        with self._lock:
            entry = self._items.get(key)
            if entry is None or entry[0] != version:
                return None
            self._items.move_to_end(key)
            return entry[1]

    def put(self, key, value, version):
        with self._lock:
            self._items[key] = (version, value)
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)


def file_url(prefix: str, project: str, filename: str) -> str:
    # quote() turns a local version's '+' into %2B, as the public index writes it (some
    # proxies and servers read a bare '+' as a space). Downloads take both spellings.
    return f"{prefix}/packages/{project}/{quote(filename)}"


def file_entry(prefix: str, project: str, f) -> dict:
    """A PEP 691 file object for a file we hold (a metadata FileRow or File)."""
    return {
        "filename": f.filename,
        "url": file_url(prefix, project, f.filename),
        "hashes": {"sha256": f.sha256},
        "requires-python": f.requires_python,
        "yanked": (f.yanked_reason or True) if f.yanked else False,
        "size": f.size,
        "upload-time": format_time(f.upload_time),
        "core-metadata": {"sha256": f.metadata_sha256} if f.metadata_sha256 else False,
    }


def make_page(serial: int, data: dict, template: str) -> Page:
    # The ETag is a digest of the content, so it stays right even if serials restart
    # (a rebuilt database) and agrees across processes.
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]
    return Page(serial, data, f'"{digest}"', {"template": template})


def body(page: Page, content_type: str, render) -> bytes:
    """The page in a representation, rendered once and kept with the page."""
    found = page.bodies.get(content_type)
    if found is None:
        if content_type.endswith("+json"):
            found = json.dumps(page.data, separators=(",", ":")).encode()
        else:
            found = render(f"simple/{page.bodies['template']}.html", page.data).encode()
        page.bodies[content_type] = found
    return found
