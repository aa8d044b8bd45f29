"""What hosted and proxy repositories share: files kept in storage under the repository's
prefix, with their rows in the database, served, listed, deleted and yanked the same way.
"""

from __future__ import annotations

import logging

from .. import names, records
from ..errors import NotFound
from ..interfaces import ObjectNotFound
from ..models import File
from ..pages import API_VERSION, Page, PageCache, make_page
from ..pages.jsonapi import release_json
from ..records import FileRecord
from ..metadata.browse import Browse
from .base import (
    DELETE,
    READ,
    Metadata,
    ProjectDetail,
    ProjectFiles,
    Repository,
    StoredFile,
    Work,
    rows_page,
)

log = logging.getLogger(__name__)


class StoredRepository(Repository):
    stores = True

    def __init__(self, name: str, prefix: str, storage, db):
        super().__init__(name)
        self.prefix = prefix
        self.storage = storage
        self.db = db
        self.page_cache = PageCache()
        # The repositories whose files share this one's storage keys (its own id, and the
        # other one of the hosted and proxy repositories that share packages/ on a server
        # without declared repositories): a filename is one object for all of them.
        self.claimed_in: tuple[int, ...] = ()

    def key(self, project: str, filename: str) -> str:
        return records.dist_key(project, filename, self.prefix)

    # --- reads -----------------------------------------------------------------------------

    def project_files(self, work: Work, name: str) -> ProjectFiles | None:
        """The files held of a project, read once per serial per process."""
        found = work.projects(name).get(self.id)
        if found is None:
            return None
        project_id, serial = found
        key = ("files", name, "")
        held = self.page_cache.get(key, serial)
        if held is None:
            held = ProjectFiles.of(serial, self.db.serials.file_rows(project_id))
            self.page_cache.put(key, held, serial)
        return held

    def held_page(self, work: Work, name: str, base: str) -> Page | None:
        """The page of the files held here; None when there are none."""
        found = work.projects(name).get(self.id)
        if found is None:
            return None
        serial = found[1]
        key = ("project", name, base)
        page = self.page_cache.get(key, serial)
        if page is None:
            held = self.project_files(work, name)
            if not held.rows:
                return None
            page = rows_page(serial, name, base, held.rows)
            self.page_cache.put(key, page, serial)
        return page

    def root_page(self, work: Work, base: str) -> Page:
        return work.visible_page(self, self.full_root_page(work, base))

    def full_root_page(self, work: Work, base: str) -> Page:
        """Every project held here, whoever asks (root_page: what the caller may see)."""
        serial = self.db.serials.repository(self.id)
        key = ("root", "", base)
        page = self.page_cache.get(key, serial)
        if page is None:
            projects = work.metadata.project_names(self.id)
            page = make_page(serial, {
                "meta": {"api-version": API_VERSION, "_last-serial": serial},
                "projects": [{"name": display, "_normalized": name}
                             for name, display in projects],
            }, "index")
            self.page_cache.put(key, page, serial)
        return page

    def listing_ids(self) -> list[int]:
        return [self.id]

    def project_detail(self, work: Work, name: str) -> ProjectDetail | None:
        """Read once per serial per process, like the simple page."""
        found = work.projects(name).get(self.id)
        if found is None:
            return None
        # Held here: the caller may read it, or it is as good as missing (Hidden).
        work.require(self, name, READ)
        project_id, serial = found
        key = ("detail", name, "")
        detail = self.page_cache.get(key, serial)
        if detail is None:
            display, rows = Browse(work.session).project_detail(project_id)
            if not rows:
                return None
            detail = ProjectDetail(name, display, (self.id, serial), rows, {self.id: self})
            self.page_cache.put(key, detail, serial)
        return detail

    def file_info(self, work: Work, file_id: int) -> dict:
        """The metadata a file of this repository was stored with (File.info)."""
        return Browse(work.session).file_info(file_id)

    def stored_file(self, work: Work, name: str, filename: str):
        """A StoredFile or a Metadata held here, or None."""
        meta = filename.endswith(records.METADATA_SUFFIX)
        dist = filename[: -len(records.METADATA_SUFFIX)] if meta else filename
        held = self.project_files(work, name)
        row = held.by_name.get(dist) if held is not None else None
        if row is None or (meta and not row.metadata_sha256):
            return None
        if not meta:
            return StoredFile(row, self.key(name, row.filename), self.storage)
        try:
            return Metadata(self.storage.read_bytes(self.key(name, dist) +
                                                    records.METADATA_SUFFIX))
        except ObjectNotFound:
            return None

    def json_api(self, work: Work, name: str, version: str | None, base: str) -> dict:
        work.require(self, name, READ)
        cache = work.metadata
        found = cache.project_serial(self.id, name)
        files = cache.files(found[0]) if found else []
        if not files:
            raise NotFound(name)
        data = release_json(files, files[0].project.display_name, found[1], name, version,
                            base)
        if data is None:
            raise NotFound(f"{name} {version}")
        return data

    # --- delete and yank -------------------------------------------------------------------

    def version_files(self, work: Work, name: str, version: str) -> list[File]:
        cache = work.metadata
        found = cache.project_serial(self.id, name)
        if not found:
            raise NotFound(name)
        wanted = names.canonical_version(version)
        rows = [f for f in cache.files(found[0]) if f.canonical_version == wanted]
        if not rows:
            raise NotFound(f"{name} {version}")
        return rows

    def delete_file(self, work: Work, name: str, filename: str) -> list[str]:
        work.require(self, name, DELETE)
        row = work.metadata.file(self.id, name, filename)
        if row is None:
            raise NotFound(filename)
        return self.delete_rows(work, [row], name)

    def delete_version(self, work: Work, name: str, version: str) -> list[str]:
        work.require(self, name, DELETE)
        return self.delete_rows(work, self.version_files(work, name, version), name)

    def delete_rows(self, work: Work, rows: list[File], name: str, event: str = "delete",
                    detail: str | None = None, commit: bool = True) -> list[str]:
        cache = work.metadata
        gone = []
        for row in rows:
            # Record first: without it the file no longer exists for a rebuild.
            key = self.key(name, row.filename)
            self.storage.delete(key + records.RECORD_SUFFIX)
            self.storage.delete(key)
            self.storage.delete(key + records.METADATA_SUFFIX)
            cache.record_event(self.name, event, work.user, name, row.version, row.filename,
                               detail)
            gone.append(row.filename)
        cache.delete_files(rows)
        if commit:
            work.session.commit()
        return gone

    def set_yanked(self, work: Work, name: str, version: str, yanked: bool,
                   reason: str | None) -> list[str]:
        work.require(self, name, DELETE)
        cache = work.metadata
        rows = self.version_files(work, name, version)
        for row in rows:
            record = self.record_of(row, name)
            record.yanked = yanked
            record.yanked_reason = (reason or None) if yanked else None
            self.storage.put_bytes(self.key(name, row.filename) + records.RECORD_SUFFIX,
                                   record.to_json())
        cache.set_yanked(rows, reason or None, yanked)
        # The version as stored, not as the URL spelled it (1.0.0.0... matches 1.0).
        cache.record_event(self.name, "yank" if yanked else "unyank", work.user, name,
                           rows[0].version, detail=reason or None)
        work.session.commit()
        return [r.filename for r in rows]

    def record_of(self, row: File, name: str) -> FileRecord:
        try:
            return FileRecord.from_json(self.storage.read_bytes(
                self.key(name, row.filename) + records.RECORD_SUFFIX))
        except ObjectNotFound:
            # Rebuild the record from the row rather than fail a yank.
            return FileRecord(project=name, display_name=row.project.display_name,
                              **{k: getattr(row, k) for k in FileRecord.__dataclass_fields__
                                 if k not in ("project", "display_name")})

    def release_files(self, work: Work, name: str, version: str):
        # Promoting a release out of a repository takes the right to delete there.
        work.require(self, name, DELETE)
        return self, self.version_files(work, name, version)
