"""A hosted repository: the files uploaded (or promoted) to it.

Every change reaches storage and the metadata cache together: the row first (it claims
the filename, so a concurrent upload of the same name waits instead of racing us in
storage), then the objects, then the commit; nothing is left behind when either fails.
"""

from __future__ import annotations

import hashlib
import logging

from .. import names, records
from ..errors import NotFound, Refused
from ..metadata import Claim
from ..metadata.access import add_owner
from ..models import File, Project, column_limit
from ..pages import Page
from ..records import FileRecord, utcnow
from ..settings import as_bool, as_size
from ..upload import UploadForm, check_digests, hash_stream, inspect
from .base import READ, UPLOAD, Repository, Work
from .stored import StoredRepository

log = logging.getLogger(__name__)


class HostedRepository(StoredRepository):
    kind = "hosted"

    def __init__(self, name: str, prefix: str, storage, db, allow_overwrite: bool = False,
                 max_upload_size: int = 1024**3):
        super().__init__(name, prefix, storage, db)
        self.allow_overwrite = allow_overwrite
        self.max_upload_size = max_upload_size
        # Called with (work, project) before a new project's first upload: the proxies
        # that come after this repository in a group refuse a name their upstream has.
        self.new_name_checks: list = []

    @classmethod
    def from_spec(cls, spec, deps) -> HostedRepository:
        s = spec.settings
        return cls(spec.name, spec.prefix, deps.storage, deps.db,
                   allow_overwrite=s.get_value("pypi.allow_overwrite", as_bool, False),
                   max_upload_size=s.get_value("pypi.max_upload_size", as_size, 1024**3))

    def describe(self) -> dict:
        return {"allow_overwrite": self.allow_overwrite,
                "max_upload_size": self.max_upload_size}

    # --- reads -----------------------------------------------------------------------------

    def holds(self, work: Work, name: str) -> bool:
        held = self.project_files(work, name)
        return held is not None and bool(held.rows)

    def local_page(self, work: Work, name: str, base: str) -> tuple[bool, Page | None]:
        if not work.may(self, name, READ):
            return False, None  # the router's views say no, as the caller needs to hear it
        return True, self.held_page(work, name, base)

    def project_page(self, work: Work, name: str, base: str, merging: bool = False
                     ) -> Page | None:
        work.require(self, name, READ)
        return self.held_page(work, name, base)

    def file(self, work: Work, name: str, filename: str, head: bool = False):
        work.require(self, name, READ)
        found = self.stored_file(work, name, filename)
        if found is None:
            raise NotFound(filename)
        return found

    # --- uploads ---------------------------------------------------------------------------

    def upload(self, work: Work, form: UploadForm, via: Repository | None = None) -> str:
        """Store an uploaded file; returns a message. Raises Refused.

        Only a real conflict is a 409: another file under this filename, or under another
        spelling of it (names.filename_key), with other bytes. The same bytes again is
        success, also when a concurrent upload of them stored them first.
        """
        got = hash_stream(form.content, self.max_upload_size)
        check_digests(form, got)
        seen = inspect(form)
        project = seen.dist.project
        # The project is known now: may the caller upload to it (here, and through the
        # group the upload was sent to)?
        for where in (via, self):
            if where is not None:
                work.require(where, project, UPLOAD, hide=False)
        new = not self.holds(work, project)
        if new:
            for check in self.new_name_checks:
                check(work, project)
        cache = work.metadata
        claim = cache.claimant(self.claimed_in, form.filename,
                               names.filename_key(form.filename))
        replacing = None
        if claim is not None:
            if not self._may_replace(claim, form.filename, project, got.sha256):
                return _settle(claim, form.filename, project, got.sha256)
            replacing = cache.file_by_name(self.id, form.filename)
        else:
            twin = cache.file_by_digest(self.id, project, got.sha256)
            if twin is not None:
                if names.filename_key(twin[0]) == names.filename_key(form.filename):
                    # Stored by a concurrent upload of the same file since we looked.
                    return _settle(Claim(twin[0], twin[1], project, self.id), form.filename,
                                   project, got.sha256)
                raise Refused(409, f"File already exists: the content of {form.filename!r} "
                                   f"is already uploaded as {twin[0]!r}.")

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
            uploader=work.user,
            info=seen.info,
        )
        check_storable(record)
        # Whoever creates a project owns it (and may do everything to it).
        owner = work.user if new else None
        taken = self._store(work, record, form.content, core, replacing, owner)
        if taken is not None:
            return _settle(taken, form.filename, project, got.sha256)
        return f"Uploaded {form.filename}."

    def _may_replace(self, claim: Claim, filename: str, project: str, sha256: str) -> bool:
        # pypi.allow_overwrite replaces a file in place: same repository and project, same
        # filename (a file of another repository on a shared prefix is not ours to replace).
        return (self.allow_overwrite and claim.repository_id == self.id
                and claim.project == project and claim.filename == filename
                and claim.sha256 != sha256)

    def _store(self, work: Work, record: FileRecord, stream, core: bytes | None,
               replacing, owner: str | None = None) -> Claim | None:
        """Claim the filename in the database, write storage, then commit; returns None,
        or the file that holds the filename when another upload claimed it first (then
        nothing was written).

        The row is inserted first so that a concurrent upload of the same filename waits
        on it instead of racing us in storage; the serial is bumped last so its row lock
        is held only for the commit. The distribution goes before its .metadata, so that
        a crash leaves a distribution without a record, which the reconcile removes,
        never a lone .metadata, which looks like an upstream sidecar kept on its own.
        """
        session, cache = work.session, work.metadata
        keys = []
        try:
            if replacing is not None:
                cache.replace_file(replacing, record)
                project_id = replacing.project_id
            else:
                project_id, taken = cache.add_file(self.id, record, self.claimed_in)
                if taken is not None:
                    session.rollback()
                    return taken
            self._write(record, stream, core, keys)
            if owner is not None:
                add_owner(session, self.name, record.project, owner)
            cache.bump_serial(self.id, project_id)
            cache.record_event(self.name, "upload", record.uploader, record.project,
                               record.version, record.filename)
            session.commit()
        except BaseException:
            session.rollback()
            if replacing is None:  # an overwrite replaced the objects in place
                self._forget(keys)
            raise
        return None

    def _write(self, record: FileRecord, stream, core: bytes | None,
               written: list[str]) -> None:
        """The file's objects: distribution, .metadata, record last; each key is added to
        written once its object is in."""
        key = self.key(record.project, record.filename)
        self.storage.put(key, stream, record.size)
        written.append(key)
        if core is not None:
            self.storage.put_bytes(key + records.METADATA_SUFFIX, core)
            written.append(key + records.METADATA_SUFFIX)
        self.storage.put_bytes(key + records.RECORD_SUFFIX, record.to_json())
        written.append(key + records.RECORD_SUFFIX)

    def _forget(self, keys) -> None:
        for key in reversed(keys):
            try:
                self.storage.delete(key)
            except Exception:  # noqa: BLE001 - best effort; the record goes first anyway
                log.exception("could not remove %s after a failed write", key)

    def accept(self, work: Work, name: str) -> HostedRepository:
        work.require(self, name, UPLOAD)
        return self


def _settle(claim: Claim, filename: str, project: str, sha256: str) -> str:
    """The answer to an upload of a filename another file holds: success when it is the
    same file, else the 409 that says which file and what it holds."""
    same_name = claim.filename == filename
    if claim.sha256 == sha256 and claim.project == project:
        where = "" if same_name else f" as {claim.filename!r}"
        return f"File {filename} already exists{where} with the same content; nothing to do."
    what = repr(filename) if same_name else \
        f"{filename!r} is the same distribution as {claim.filename!r}"
    raise Refused(409, f"File already exists ({what}, with sha256 hash {claim.sha256!r}). "
                       "Use a different version, or delete the file first.")


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
            raise Refused(400, f"{label!r} is too long: {len(value)} characters, the limit "
                               f"is {limit}.")
        if not storable_text(value):
            raise Refused(400, f"{label!r} contains a NUL or an invalid character.")


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
