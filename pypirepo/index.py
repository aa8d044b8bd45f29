"""The package index service: the only place with policy.

Views parse and authorize, then call this. It decides what a project page lists, what an
upload must satisfy, and how a change reaches storage and the metadata cache together:
storage first (the truth), the row after, and nothing left behind when either fails.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from . import names, pages, records
from .errors import NotFound
from .metadata import Claim, MetadataCache
from .interfaces import ObjectNotFound, Storage
from .models import File, Project, column_limit
from .records import FileRecord, utcnow
from .pages import API_VERSION, Page, PageCache, file_entry, make_page
from .pages.jsonapi import release_json
from .upload import UploadError, UploadForm, check_digests, hash_stream, inspect

log = logging.getLogger(__name__)

@dataclass
class ProjectFiles:
    """What we hold of a project at one serial, as plain rows shared by every thread:
    one query per serial serves its pages, its downloads and the fallback."""

    serial: int
    rows: list  # Serials.file_rows(): sorted by filename
    by_name: dict
    private: list  # uploaded here
    upstream: list  # cached from the upstream index

    @classmethod
    def of(cls, serial: int, rows: list) -> ProjectFiles:
        private = [r for r in rows if r.origin != "upstream"]
        upstream = [r for r in rows if r.origin == "upstream"]
        return cls(serial, rows, {r.filename: r for r in rows}, private, upstream)


class IndexService:
    def __init__(self, session_factory, serials, storage: Storage, config,
                 page_cache: PageCache, renderer, new_project_policy=None):
        self._session_factory = session_factory
        # Called with (session, project, user) before an upload; may refuse a new name
        # (the fallback refuses names that exist upstream unless an admin uploads).
        self.new_project_policy = new_project_policy
        self._session = None
        self.serials = serials
        self.storage = storage
        self.config = config
        self.pages = page_cache
        self.render = renderer
        self._serials: dict = {}  # name -> serials.project(name), once per request

    # The ORM session is opened only when a request needs more than a page-cache hit.
    @property
    def session(self):
        if self._session is None:
            self._session = self._session_factory()
        return self._session

    @property
    def cache(self) -> MetadataCache:
        return MetadataCache(self.session)

    def close(self) -> None:
        if self._session is not None:
            # Writes commit explicitly; anything left over is discarded.
            self._session.rollback()
            self._session.close()
            self._session = None

    # --- the simple API ------------------------------------------------------------------

    def root_page(self, prefix: str) -> Page:
        serial = self.serials.index()
        key = ("root", "", prefix)
        page = self.pages.get(key, serial)
        if page is None:
            projects = self.cache.project_names()
            data = {
                "meta": {"api-version": API_VERSION, "_last-serial": serial},
                "projects": [{"name": display, "_normalized": name} for name, display in projects],
            }
            page = make_page(serial, data, "index")
            self.pages.put(key, page, serial)
        return page

    def project_serial(self, name: str) -> tuple[int, int] | None:
        """(project id, serial) or None: the freshness query, made once per project and
        request however many steps of the request ask (a download, then the fallback)."""
        try:
            return self._serials[name]
        except KeyError:
            found = self._serials[name] = self.serials.project(name)
            return found

    def project_files(self, name: str) -> ProjectFiles | None:
        """The files we hold of a project, read once per serial per process."""
        found = self.project_serial(name)
        if found is None:
            return None
        project_id, serial = found
        key = ("files", name, "")
        held = self.pages.get(key, serial)
        if held is None:
            held = ProjectFiles.of(serial, self.serials.file_rows(project_id))
            self.pages.put(key, held, serial)
        return held

    def project_page(self, name: str, prefix: str) -> Page | None:
        found = self.project_serial(name)
        if found is None:
            return None
        serial = found[1]
        key = ("project", name, prefix)
        page = self.pages.get(key, serial)
        if page is None:
            held = self.project_files(name)
            files = held.rows
            if not files:
                return None
            data = {
                "meta": {"api-version": API_VERSION, "_last-serial": serial},
                "name": name,
                "files": [file_entry(prefix, name, f) for f in files],
                "versions": sorted({f.version for f in files}, key=names.version_key),
            }
            page = make_page(serial, data, "detail")
            self.pages.put(key, page, serial)
        return page

    def body(self, page: Page, content_type: str) -> bytes:
        return pages.body(page, content_type, self.render)

    # --- files ---------------------------------------------------------------------------

    def get_file(self, project: str, filename: str) -> File:
        """The File object, for changing it; downloads read file_row()."""
        row = self.cache.file(project, filename)
        if row is None:
            raise NotFound(filename)
        return row

    def file_row(self, project: str, filename: str):
        """A file's plain row (a cache.FileRow) for serving it: the freshness query and
        a dict lookup once the project's files are held."""
        held = self.project_files(project)
        row = held.by_name.get(filename) if held is not None else None
        if row is None:
            raise NotFound(filename)
        return row

    def open_metadata(self, project: str, filename: str) -> bytes:
        row = self.file_row(project, filename)
        if not row.metadata_sha256:
            raise NotFound(filename + ".metadata")
        try:
            return self.storage.read_bytes(records.metadata_key(project, filename))
        except ObjectNotFound:
            raise NotFound(filename + ".metadata") from None

    # --- upload --------------------------------------------------------------------------

    def upload(self, form: UploadForm, user: str | None) -> str:
        """Store an uploaded file; returns a message. Raises UploadError.

        Only a real conflict is a 409: another file under this filename, or under another
        spelling of it (names.filename_key), with other bytes. The same bytes again is
        success, also when a concurrent upload of them stored them first.
        """
        got = hash_stream(form.content, self.config.max_upload_size)
        check_digests(form, got)
        seen = inspect(form)
        project = seen.dist.project
        if self.new_project_policy is not None:
            self.new_project_policy(self.session, project, user)

        claim = self.cache.claimant(form.filename, names.filename_key(form.filename))
        replacing = None
        if claim is not None:
            if not self._may_replace(claim, form.filename, project, got.sha256):
                return _settle(claim, form.filename, project, got.sha256)
            replacing = self.cache.file_by_name(form.filename)
        else:
            twin = self.cache.file_by_digest(project, got.sha256)
            if twin is not None:
                if names.filename_key(twin[0]) == names.filename_key(form.filename):
                    # Stored by a concurrent upload of the same file since we looked.
                    return _settle(Claim(twin[0], twin[1], project), form.filename,
                                   project, got.sha256)
                raise UploadError(409, f"File already exists: the content of "
                                       f"{form.filename!r} is already uploaded as {twin[0]!r}.")

        core = seen.core_metadata
        record = FileRecord(
            project=project,
            display_name=seen.info.get("name") or form.name,
            filename=form.filename,
            version=seen.dist.version,
            canonical_version=names.canonical_version(seen.dist.version),
            packagetype=seen.dist.packagetype,
            python_version=form.pyversion or seen.dist.python_version,
            size=got.size,
            sha256=got.sha256,
            md5=got.md5,
            blake2_256=got.blake2_256,
            upload_time=utcnow(),
            requires_python=seen.requires_python,
            metadata_sha256=hashlib.sha256(core).hexdigest() if core else None,
            uploader=user,
            info=seen.info,
        )
        check_storable(record)
        taken = self._store(record, form.content, core, replacing)
        if taken is not None:
            return _settle(taken, form.filename, project, got.sha256)
        return f"Uploaded {form.filename}."

    def _may_replace(self, claim: Claim, filename: str, project: str, sha256: str) -> bool:
        # pypi.allow_overwrite replaces a file in place: same project, same filename.
        return (self.config.allow_overwrite and claim.project == project
                and claim.filename == filename and claim.sha256 != sha256)

    def _store(self, record: FileRecord, stream, core: bytes | None, replacing
               ) -> Claim | None:
        """Claim the filename in the database, write storage, then commit; returns None,
        or the file that holds the filename when another upload claimed it first (then
        nothing was written).

        The row is inserted first so that a concurrent upload of the same filename waits
        on it instead of racing us in storage; the serial is bumped last so its row lock
        is held only for the commit. The distribution goes before its .metadata, so that
        a crash leaves a distribution without a record, which the reconcile removes,
        never a lone .metadata, which looks like an upstream sidecar kept on its own.
        """
        keys = []
        try:
            if replacing is not None:
                self.cache.replace_file(replacing, record)
                project_id = replacing.project_id
            else:
                project_id, taken = self.cache.add_file(record)
                if taken is not None:
                    self.session.rollback()
                    return taken
            keys.append(records.dist_key(record.project, record.filename))
            self.storage.put(keys[-1], stream, record.size)
            if core is not None:
                keys.append(records.metadata_key(record.project, record.filename))
                self.storage.put_bytes(keys[-1], core)
            keys.append(records.record_key(record.project, record.filename))
            self.storage.put_bytes(keys[-1], record.to_json())
            self.cache.bump_serial(project_id)
            self.cache.record_event("upload", record.uploader, record.project,
                                    record.version, record.filename)
            self.session.commit()
        except BaseException:
            self.session.rollback()
            self._forget(keys, replacing)
            raise
        return None

    # --- delete and yank -----------------------------------------------------------------

    def _version_files(self, project: str, version: str) -> list[File]:
        found = self.cache.project_serial(project)
        if not found:
            raise NotFound(project)
        wanted = names.canonical_version(version)
        rows = [f for f in self.cache.files(found[0]) if f.canonical_version == wanted]
        if not rows:
            raise NotFound(f"{project} {version}")
        return rows

    def delete_file(self, project: str, filename: str, user: str | None) -> list[str]:
        return self._delete([self.get_file(project, filename)], project, user)

    def delete_version(self, project: str, version: str, user: str | None) -> list[str]:
        return self._delete(self._version_files(project, version), project, user)

    def _delete(self, rows: list[File], project: str, user: str | None) -> list[str]:
        gone = []
        for row in rows:
            # Record first: without it the file no longer exists for a rebuild.
            self.storage.delete(records.record_key(project, row.filename))
            self.storage.delete(records.dist_key(project, row.filename))
            self.storage.delete(records.metadata_key(project, row.filename))
            self.cache.record_event("delete", user, project, row.version, row.filename)
            gone.append(row.filename)
        self.cache.delete_files(rows)
        self.session.commit()
        return gone

    def set_yanked(self, project: str, version: str, yanked: bool, reason: str | None,
                   user: str | None) -> list[str]:
        rows = self._version_files(project, version)
        for row in rows:
            record = self._record_of(row, project)
            record.yanked = yanked
            record.yanked_reason = (reason or None) if yanked else None
            self.storage.put_bytes(records.record_key(project, row.filename), record.to_json())
        self.cache.set_yanked(rows, reason or None, yanked)
        # The version as stored, not as the URL spelled it (1.0.0.0... matches 1.0).
        self.cache.record_event("yank" if yanked else "unyank", user, project,
                                rows[0].version, detail=reason or None)
        self.session.commit()
        return [r.filename for r in rows]

    def _record_of(self, row: File, project: str) -> FileRecord:
        try:
            return FileRecord.from_json(
                self.storage.read_bytes(records.record_key(project, row.filename))
            )
        except ObjectNotFound:
            # Rebuild the record from the row rather than fail a yank.
            return FileRecord(project=project, display_name=row.project.display_name,
                              **{k: getattr(row, k) for k in FileRecord.__dataclass_fields__
                                 if k not in ("project", "display_name")})

    # --- the JSON API --------------------------------------------------------------------

    def json_api(self, project: str, version: str | None, base_url: str) -> dict:
        found = self.cache.project_serial(project)
        files = self.cache.files(found[0]) if found else []
        if not files:
            raise NotFound(project)
        data = release_json(files, files[0].project.display_name, found[1], project, version,
                            base_url)
        if data is None:
            raise NotFound(f"{project} {version}")
        return data


def _settle(claim: Claim, filename: str, project: str, sha256: str) -> str:
    """The answer to an upload of a filename another file holds: success when it is the
    same file, else the 409 that says which file and what it holds."""
    same_name = claim.filename == filename
    if claim.sha256 == sha256 and claim.project == project:
        where = "" if same_name else f" as {claim.filename!r}"
        return f"File {filename} already exists{where} with the same content; nothing to do."
    what = repr(filename) if same_name else \
        f"{filename!r} is the same distribution as {claim.filename!r}"
    raise UploadError(409, f"File already exists ({what}, with sha256 hash "
                           f"{claim.sha256!r}). Use a different version, or delete the "
                           "file first.")


def check_storable(record: FileRecord) -> None:
    """Refuse, with the field's name and limit, what the database could not hold: on
    PostgreSQL a value longer than its column, a NUL character or a lone surrogate is
    an error, not a row (SQLite would take them), and the answer must not depend on
    the database."""
    for table, column, label, value in (
        (File, "version", "version", record.version),
        (File, "python_version", "pyversion", record.python_version),
        (File, "requires_python", "Requires-Python", record.requires_python),
        (Project, "display_name", "name", record.display_name),
    ):
        if value is None:
            continue
        limit = column_limit(table, column)
        if limit is not None and len(value) > limit:
            raise UploadError(400, f"{label!r} is too long: {len(value)} characters, the "
                                   f"limit is {limit}.")
        if not storable_text(value):
            raise UploadError(400, f"{label!r} contains a NUL or an invalid character.")


def storable_text(value: str) -> bool:
    """Whether every database takes the text: no NUL, nothing UTF-8 cannot encode."""
    if "\x00" in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
