"""A project's long description as HTML, rendered the way the public index renders it.

readme-renderer turns reStructuredText, Markdown (GitHub's flavour) or plain text into
HTML and sanitizes it with nh3 (tags and attributes from a list, no scripts, no event
handlers, no `javascript:` URLs, no style). On top of that, a second nh3 pass with this
site's own rules, so that a README cannot pass for part of the page around it:

- ids and in-page links are prefixed (`user-content-`, as readme-renderer does for the
  ids it makes), so a README's `id="main"` cannot take the page's own;
- class names this site's stylesheet uses are dropped (a README's `class="button"` would
  be styled as ours);
- images become their alt text: the Content-Security-Policy would block another site's
  image anyway, and a page of this index must not fetch anything from elsewhere (a
  remote image tells that site who reads what);
- a task list's checkboxes become ☐ and ☑ (an input in a page is a form field that
  has no label, and a README has no business with form fields);
- `lang` goes (a code block's `lang="python"` names no human language).

Rendering is cached by a digest of the text and its content type: each description is
rendered once per process, however often its page is shown.
"""

from __future__ import annotations

import hashlib
import re
from email.message import Message

import nh3
from markupsafe import Markup

from ..paths import resource_dir
from . import PageCache

ID_PREFIX = "user-content-"


def _site_classes() -> frozenset[str]:
    try:
        css = (resource_dir("static") / "app.css").read_text()
    except OSError:
        return frozenset()
    return frozenset(re.findall(r"\.([A-Za-z_][A-Za-z0-9_-]*)", css))


class ReadmeRenderer:
    def __init__(self, maxsize: int = 256):
        self._cache = PageCache(maxsize)
        self._site_classes = _site_classes()

    def render(self, text: str | None, content_type: str | None) -> Markup | None:
        """The description as safe HTML, or None when there is none."""
        if not text or not text.strip():
            return None
        key = hashlib.sha256(f"{content_type or ''}\0{text}".encode()).hexdigest()
        found = self._cache.get(key, 0)
        if found is None:
            found = Markup(_unform(self._clean(_render(text, content_type))))
            self._cache.put(key, found, 0)
        return found

    def _clean(self, html: str) -> str:
        from readme_renderer.clean import ALLOWED_ATTRIBUTES, ALLOWED_TAGS

        return nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                         link_rel="nofollow noopener noreferrer",
                         url_schemes={"http", "https", "mailto"},
                         attribute_filter=self._attribute)

    def _attribute(self, element: str, attribute: str, value: str) -> str | None:
        if attribute == "id":
            return value if value.startswith(ID_PREFIX) else ID_PREFIX + value
        if attribute == "href" and value.startswith("#") and \
                not value.startswith("#" + ID_PREFIX):
            return "#" + ID_PREFIX + value[1:]
        if attribute == "class":
            kept = [c for c in value.split() if c not in self._site_classes]
            return " ".join(kept) or None
        if attribute == "lang" or (element == "img" and attribute != "alt"):
            return None
        return value


# nh3's output is well-formed: attributes double-quoted, their values escaped.
_IMG = re.compile(r"<img\b([^>]*)>")
_INPUT = re.compile(r"<input\b([^>]*)>")
_ALT = re.compile(r'\balt="([^"]*)"')


def _unform(html: str) -> str:
    def image(m):
        alt = _ALT.search(m.group(1))
        return f'<span class="readme-image">{alt.group(1)}</span>' if alt and alt.group(1) \
            else ""

    def checkbox(m):
        return "\u2611" if re.search(r"\bchecked\b", m.group(1)) else "\u2610"

    return _INPUT.sub(checkbox, _IMG.sub(image, html))


def _render(text: str, content_type: str | None) -> str:
    """readme-renderer's HTML for the content type (reStructuredText when none is given,
    as the public index takes it); text that does not render as its type is shown as
    plain text, as the public index does."""
    from readme_renderer import markdown, rst, txt

    kind, params = _parse_content_type(content_type)
    html = None
    if kind == "text/markdown":
        variant = params.get("variant", "GFM")
        html = markdown.render(text, variant=variant if variant in ("GFM", "CommonMark")
                               else "GFM")
    elif kind in ("text/x-rst", ""):
        html = rst.render(text)
    if html is None:
        html = txt.render(text)
    return html or ""


def _parse_content_type(value: str | None) -> tuple[str, dict]:
    if not value:
        return "", {}
    msg = Message()
    msg["Content-Type"] = value
    return msg.get_content_type() if value.strip() else "", dict(msg.get_params()[1:])
