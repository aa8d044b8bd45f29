"""The UI's static files (pypirepo/static/), read once at start-up and served from memory.

Each URL carries a digest of its file's content (`/static/<digest>/app.css`), so a
browser may keep it for a year: a new release changes the digest and with it the URL.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ...paths import resource_dir

# The few kinds the UI ships; anything else is served as bytes.
CONTENT_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}
TOKEN_LENGTH = 12


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    token: str  # the first characters of the content's sha256

    @property
    def etag(self) -> str:
        return f'"{self.token}"'


class StaticAssets:
    def __init__(self, files: dict[str, Asset]):
        self.files = files

    @classmethod
    def load(cls, directory: Path | None = None) -> StaticAssets:
        directory = directory or resource_dir("static")
        files = {}
        for path in sorted(directory.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                body = path.read_bytes()
                name = path.relative_to(directory).as_posix()
                files[name] = Asset(
                    body, CONTENT_TYPES.get(path.suffix, "application/octet-stream"),
                    hashlib.sha256(body).hexdigest()[:TOKEN_LENGTH])
        return cls(files)

    def url(self, prefix: str, name: str) -> str:
        """The URL of a shipped file; a name we don't ship is a template's bug."""
        return f"{prefix}/static/{self.files[name].token}/{name}"

    def get(self, name: str) -> Asset | None:
        return self.files.get(name)
