"""The metadata cache: every SQL statement of pypirepo lives in this package.

The cache never commits on its own; the caller (a request or a command) owns the
transaction. Every change bumps the global serial and the project's serial, which is how
page caches in every process that shares the database learn that a page is stale.
"""

from __future__ import annotations

import threading
import time
from collections import namedtuple
from collections.abc import Iterable

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from ..models import Event, File, IndexState, Project
from ..records import FileRecord, utcnow
from .beacon import CHANGED, RECHECK, attach


# What the simple API and downloads need of a file; Serials.file_rows() returns these.
FILE_ROW_COLUMNS = ("filename", "version", "origin", "sha256", "requires_python", "yanked",
                    "yanked_reason", "size", "upload_time", "metadata_sha256")
FileRow = namedtuple("FileRow", FILE_ROW_COLUMNS)
_FILES = File.__table__
_MAX_ANSWERS = 10_000


class MetadataCache:
    def __init__(self, session: Session):
        self.session = session

    # --- reads on the hot path -----------------------------------------------------------

    def index_serial(self) -> int:
        return self.session.execute(select(IndexState.serial).where(IndexState.id == 1)).scalar()

    def project_serial(self, name: str) -> tuple[int, int] | None:
        """(project id, serial) for a normalized name, or None."""
        row = self.session.execute(
            select(Project.id, Project.serial).where(Project.name == name)
        ).first()
        return (row[0], row[1]) if row else None

    def project_names(self) -> list[tuple[str, str]]:
        """(normalized, display) for every project that has files."""
        stmt = (
            select(Project.name, Project.display_name)
            .where(select(File.id).where(File.project_id == Project.id).exists())
            .order_by(Project.name)
        )
        return [(r[0], r[1]) for r in self.session.execute(stmt)]

    def project(self, name: str) -> Project | None:
        return self.session.execute(select(Project).where(Project.name == name)).scalar()

    def files(self, project_id: int) -> list[File]:
        stmt = select(File).where(File.project_id == project_id).order_by(File.filename)
        return list(self.session.execute(stmt).scalars())

    def file(self, project: str, filename: str) -> File | None:
        stmt = (
            select(File)
            .join(Project, File.project_id == Project.id)
            .where(Project.name == project, File.filename == filename)
        )
        return self.session.execute(stmt).scalar()

    def file_and_project(self, filename: str) -> tuple[File, str] | tuple[None, None]:
        """The file of that name and its project's name, in one query."""
        row = self.session.execute(
            select(File, Project.name).join(Project, File.project_id == Project.id)
            .where(File.filename == filename)
        ).first()
        return (row[0], row[1]) if row else (None, None)

    def file_by_name(self, filename: str) -> File | None:
        return self.session.execute(select(File).where(File.filename == filename)).scalar()

    def file_by_digest(self, project: str, sha256: str) -> tuple[str, str] | None:
        """(filename, sha256) of a file of the project with these bytes, if any."""
        stmt = (
            select(File.filename, File.sha256).join(Project, File.project_id == Project.id)
            .where(Project.name == project, File.sha256 == sha256).limit(1)
        )
        row = self.session.execute(stmt).first()
        return (row[0], row[1]) if row else None

    # --- writes --------------------------------------------------------------------------

    def bump_serial(self, project_id: int | None = None) -> int:
        self.session.info[CHANGED] = True  # the commit will bump the beacon
        serial = self.session.execute(
            update(IndexState).where(IndexState.id == 1)
            .values(serial=IndexState.serial + 1).returning(IndexState.serial)
        ).scalar()
        if project_id is not None:
            self.session.execute(
                update(Project).where(Project.id == project_id).values(serial=serial)
            )
        return serial

    def ensure_project(self, name: str, display_name: str) -> int:
        found = self.project_serial(name)
        if found:
            return found[0]
        project = Project(name=name, display_name=display_name, serial=0, created=utcnow())
        self.session.add(project)
        self.session.flush()
        return project.id

    def add_file(self, record: FileRecord) -> File:
        """Insert the row, which claims the filename until commit; the caller bumps the
        serial just before committing, so the serial's row lock is held only briefly."""
        project_id = self.ensure_project(record.project, record.display_name)
        row = File(project_id=project_id, **record.row())
        self.session.add(row)
        self.session.flush()
        return row

    def replace_file(self, row: File, record: FileRecord) -> None:
        for key, value in record.row().items():
            setattr(row, key, value)
        self.session.flush()
        self.bump_serial(row.project_id)

    def delete_files(self, rows: Iterable[File]) -> None:
        project_ids = set()
        for row in rows:
            project_ids.add(row.project_id)
            self.session.delete(row)
        self.session.flush()
        for pid in project_ids:
            self._drop_project_if_empty(pid)
            self.bump_serial(pid)

    def _drop_project_if_empty(self, project_id: int) -> None:
        left = self.session.execute(
            select(func.count(File.id)).where(File.project_id == project_id)
        ).scalar()
        if not left:
            self.session.execute(delete(Project).where(Project.id == project_id))

    def set_yanked(self, rows: Iterable[File], reason: str | None, yanked: bool) -> None:
        project_ids = set()
        for row in rows:
            row.yanked = yanked
            row.yanked_reason = reason if yanked else None
            project_ids.add(row.project_id)
        self.session.flush()
        for pid in project_ids:
            self.bump_serial(pid)

    def record_event(self, action: str, user: str | None, project: str,
                     version: str | None = None, filename: str | None = None,
                     detail: str | None = None) -> None:
        self.session.add(Event(time=utcnow(), user=user, action=action, project=project,
                               version=version, filename=filename, detail=detail))

    def record_events(self, action: str, records: list[FileRecord], detail: str | None = None,
                      user: str | None = None) -> None:
        """One event per file in a single executemany, for batches (no Event objects)."""
        if not records:
            return
        now = utcnow()
        self.session.execute(insert(Event.__table__), [
            {"time": now, "user": user, "action": action, "project": r.project,
             "version": r.version, "filename": r.filename, "detail": detail}
            for r in records])

    def events(self, project: str) -> list[Event]:
        stmt = select(Event).where(Event.project == project).order_by(Event.id)
        return list(self.session.execute(stmt).scalars())

    # --- bulk operations for the rebuild -------------------------------------------------

    def all_filenames(self) -> dict[str, tuple[int, str]]:
        """filename -> (file id, project name) of every file the cache holds."""
        stmt = select(File.filename, File.id, Project.name).join(
            Project, File.project_id == Project.id
        )
        return {r[0]: (r[1], r[2]) for r in self.session.execute(stmt)}

    def bulk_add(self, records: list[FileRecord]) -> int:
        """Insert records in few statements; rows another process added first are skipped."""
        if not records:
            return 0
        dialect = self.session.get_bind().dialect.name
        names = {}
        for rec in records:
            names.setdefault(rec.project, rec.display_name)
        existing = dict(
            self.session.execute(
                select(Project.name, Project.id).where(Project.name.in_(list(names)))
            ).all()
        ) if len(names) < 500 else dict(self.session.execute(select(Project.name, Project.id)).all())
        missing = [n for n in names if n not in existing]
        if missing:
            now = utcnow()
            self.session.execute(
                _insert_ignore(dialect, Project, ["name"]),
                [{"name": n, "display_name": names[n], "serial": 0, "created": now}
                 for n in missing],
            )
            existing.update(
                self.session.execute(
                    select(Project.name, Project.id).where(Project.name.in_(missing))
                ).all()
            )
        rows = [dict(rec.row(), project_id=existing[rec.project]) for rec in records]
        self.session.execute(_insert_ignore(dialect, File, ["filename"]), rows)
        serial = self.bump_serial()
        self.session.execute(
            update(Project)
            .where(Project.id.in_({existing[r.project] for r in records}))
            .values(serial=serial)
        )
        return len(rows)

    def bulk_delete(self, file_ids: list[int]) -> None:
        if not file_ids:
            return
        pids = set()
        for chunk in _chunks(file_ids, 500):
            pids.update(
                self.session.execute(
                    select(File.project_id).where(File.id.in_(chunk)).distinct()
                ).scalars()
            )
            self.session.execute(delete(File).where(File.id.in_(chunk)))
        for pid in pids:
            self._drop_project_if_empty(pid)
            self.bump_serial(pid)


def _insert_ignore(dialect: str, model, keys: list[str]):
    # Core statements on the table, not the ORM entity: the ORM's bulk path costs several
    # times the INSERT itself for thousands of rows.
    table = model.__table__
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=keys)
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing(index_elements=keys)
    return insert(table)


def _chunks(items, n):
    for i in range(0, len(items), n):
        yield items[i : i + n]


class Serials:
    """The freshness checks every index request makes, on a connection of its own thread.

    A page cache hit costs one of these queries and nothing else. Through the ORM it would
    cost twenty times the query (session, compilation, transaction reset), and even a pool
    checkout per request is a quarter of a cached page's time, so each server thread
    keeps one autocommit connection, used for nothing but these reads.

    On a SQLite file even that query is asked only when the database's beacon says that
    something changed since it was last asked (pypirepo.cache.beacon).
    """

    def __init__(self, engine):
        self.engine = engine
        self._local = threading.local()
        self._beacon = attach(engine)
        # key -> (beacon count before the query, its answer, when it was asked). Shared by
        # the threads: an entry is only replaced whole, and a racing older answer that
        # lands last carries its older count, so the next read asks again.
        self._answers: dict = {}
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._project_sql = f"SELECT id, serial FROM projects WHERE name = {mark}"
        self._index_sql = "SELECT serial FROM index_state WHERE id = 1"
        self._upstream_page_sql = f"SELECT 1 FROM upstream_pages WHERE project = {mark}"
        self._file_rows_sql = (f"SELECT {', '.join(FILE_ROW_COLUMNS)} FROM files "
                               f"WHERE project_id = {mark} ORDER BY filename")
        # The column types' own conversions (SQLite keeps datetimes as text, booleans as
        # integers), as SQLAlchemy would apply them to the same query.
        dialect = engine.dialect
        self._file_row_processors = [
            _FILES.c[name].type.dialect_impl(dialect).result_processor(dialect, None)
            for name in FILE_ROW_COLUMNS]

    def _connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            pooled = self.engine.raw_connection()
            conn = pooled.driver_connection
            pooled.detach()  # ours for the thread's life; the pool must not hand it out
            if self.engine.dialect.name == "sqlite":
                conn.isolation_level = None  # autocommit: each read sees the latest commit
            else:
                conn.autocommit = True
            self._local.conn = conn
            self._local.pooled = pooled  # keep the detached wrapper alive with it
        return conn

    def _fetch(self, sql, params, every: bool = False):
        for attempt in (1, 2):
            conn = self._connection()
            try:
                cur = conn.cursor()
                try:
                    cur.execute(sql, params)
                    return cur.fetchall() if every else cur.fetchone()
                finally:
                    cur.close()
            except self.engine.dialect.loaded_dbapi.Error:
                # A dropped connection (database restarted): open a new one, once.
                self._local.conn = None
                try:
                    conn.close()
                except Exception:  # noqa: BLE001 - it is already broken
                    pass
                if attempt == 2:
                    raise

    def _unless_unchanged(self, key, ask):
        beacon = self._beacon
        if beacon is None:
            return ask()
        count = beacon.read()  # before the query: the answer is at least this fresh
        now = time.monotonic()
        seen = self._answers.get(key)
        if seen is not None and seen[0] == count and now - seen[2] < RECHECK:
            return seen[1]
        answer = ask()
        if len(self._answers) >= _MAX_ANSWERS:  # names asked for are the client's choice
            self._answers.clear()
        self._answers[key] = (count, answer, now)
        return answer

    def index(self) -> int:
        return self._unless_unchanged("", lambda: self._fetch(self._index_sql, ())[0])

    def project(self, name: str) -> tuple[int, int] | None:
        def ask():
            row = self._fetch(self._project_sql, (name,))
            return (row[0], row[1]) if row else None

        return self._unless_unchanged(name, ask)

    def file_rows(self, project_id: int) -> list[FileRow]:
        """The project's files (sorted by filename): what its pages and downloads read,
        once per serial. One read on this thread's connection: no session, no pool
        checkout, no File objects."""
        processors = self._file_row_processors
        return [FileRow(*(value if convert is None or value is None else convert(value)
                          for convert, value in zip(processors, row)))
                for row in self._fetch(self._file_rows_sql, (project_id,), every=True)]

    def has_upstream_page(self, project: str) -> bool:
        """Whether an upstream page of the project is kept: a never-seen project (every
        project of a cold install) costs this one read, not a pooled connection."""
        return self._fetch(self._upstream_page_sql, (project,)) is not None
