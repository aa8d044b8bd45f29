"""What storage holds for each file, and where.

    <prefix><project>/<filename>            the distribution
    <prefix><project>/<filename>.metadata   its core metadata (wheels only, PEP 658)
    <prefix><project>/<filename>.json       the record: everything the cache needs

Each repository that stores files has a prefix of its own (`repositories/<name>/`); the
hosted and proxy repositories of a server without declared repositories share the one
it always had, `packages/`, where each record's origin says whose the file is.

The record is written after the distribution and removed before it, so a record in
storage always names a complete file; rebuilding the cache reads records only.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field, fields

from .names import filename_key

PREFIX = "packages/"
RECORD_SUFFIX = ".json"
METADATA_SUFFIX = ".metadata"
RECORD_FORMAT = 1
# A cache of every record's text keyed by its version token, so a rebuild on an object
# store needs one GET instead of one per file. Never the truth: a stale entry is refetched.
SNAPSHOT_KEY = "snapshots/records.json.gz"


def dist_key(project: str, filename: str, prefix: str = PREFIX) -> str:
    return f"{prefix}{project}/{filename}"


def record_key(project: str, filename: str, prefix: str = PREFIX) -> str:
    return dist_key(project, filename, prefix) + RECORD_SUFFIX


def metadata_key(project: str, filename: str, prefix: str = PREFIX) -> str:
    return dist_key(project, filename, prefix) + METADATA_SUFFIX


def utcnow() -> dt.datetime:
    """Naive UTC, which is what the database stores and what PEP 700 wants rendered."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


def format_time(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> dt.datetime:
    if len(text) == 20 and text[19] == "Z":  # format_time's own: naive UTC as it is
        try:
            return dt.datetime.fromisoformat(text[:19])
        except ValueError:
            pass
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


@dataclass
class FileRecord:
    project: str  # normalized name
    display_name: str
    filename: str
    version: str
    canonical_version: str
    packagetype: str
    python_version: str
    size: int
    sha256: str
    upload_time: dt.datetime
    requires_python: str | None = None
    md5: str | None = None
    blake2_256: str | None = None
    metadata_sha256: str | None = None
    uploader: str | None = None
    yanked: bool = False
    yanked_reason: str | None = None
    origin: str = "private"
    info: dict = field(default_factory=dict)
    # Where the file came from besides an upload to its repository: a promotion from
    # another one ({"promoted_from", "promoted_by", "promoted_at"}), or the upstream.
    provenance: dict | None = None

    def to_json(self) -> bytes:
        data = asdict(self)
        if data["provenance"] is None:
            del data["provenance"]  # most files: a record as they always were
        data["upload_time"] = format_time(self.upload_time)
        data["format"] = RECORD_FORMAT
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> FileRecord:
        data = json.loads(raw)
        data.pop("format", None)
        if not data.keys() <= _FIELDS:  # written by a newer version: what we know of it
            data = {k: v for k, v in data.items() if k in _FIELDS}
        data["upload_time"] = parse_time(data["upload_time"])
        return cls(**data)

    def row(self) -> dict:
        """Column values for the files table (project_id is added by the caller).

        A shallow copy: asdict() would deep-copy `info`, a third of a rebuild's time.
        The filename key is derived, never stored in the record: the rule that makes two
        spellings one file can change without rewriting storage.
        """
        row = {name: getattr(self, name) for name in _RECORD_ROW_FIELDS}
        row["filename_key"] = filename_key(self.filename)
        return row


_FIELDS = frozenset(f.name for f in fields(FileRecord))
# The files table's columns a record fills, in a fixed order.
_RECORD_ROW_FIELDS = tuple(f.name for f in fields(FileRecord)
                           if f.name not in ("project", "display_name"))
ROW_FIELDS = _RECORD_ROW_FIELDS + ("filename_key",)
