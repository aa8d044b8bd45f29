"""The metadata cache: every SQL statement of pypirepo lives in this package.

The cache never commits on its own; the caller (a request or a command) owns the
transaction. Projects and files belong to a repository; every change bumps the
repository's serial and the project's, which is how page caches in every process that
shares the database learn that a page is stale (and only that repository's pages).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterable

from sqlalchemy import bindparam, delete, func, insert, select, text, update
from sqlalchemy.orm import Session, defer

from ..db.beacon import CHANGED
from ..db.serials import mark as _mark, project_serial_sql
from ..models import Event, File, Project, Repository
from ..names import filename_key
from ..records import ROW_FIELDS, FileRecord, utcnow
from .browse import refresh_sql

# The file that holds a filename (or another spelling of it): what an upload is told.
Claim = namedtuple("Claim", ("filename", "sha256", "project", "repository_id"))
_FILES = File.__table__
_PROJECTS = Project.__table__
_EVENTS = Event.__table__


class MetadataCache:
    def __init__(self, session: Session):
        self.session = session

    # --- repositories ----------------------------------------------------------------------

    def repository_ids(self, declared: dict[str, str]) -> dict[str, int]:
        """name -> id of the declared repositories (name -> kind), rows made for new names
        and kinds brought up to date; rows of names no longer declared are left alone, so
        that declaring one again finds its projects."""
        table = Repository.__table__
        found = {r.name: r for r in self.session.execute(
            select(table.c.id, table.c.name, table.c.kind)).all()}
        missing = [n for n in declared if n not in found]
        if missing:
            stmt = dialect_insert(self.session.get_bind().dialect.name, table)
            now = utcnow()
            rows = [{"name": n, "kind": declared[n], "serial": 0, "created": now}
                    for n in missing]
            if stmt is not None:  # several instances starting at once make them once
                self.session.execute(stmt.on_conflict_do_nothing(index_elements=["name"]),
                                     rows)
            else:
                self.session.execute(insert(table), rows)
        for name, row in found.items():
            if name in declared and row.kind != declared[name]:
                self.session.execute(update(table).where(table.c.id == row.id)
                                     .values(kind=declared[name]))
        return {r.name: r.id for r in self.session.execute(
            select(table.c.id, table.c.name).where(table.c.name.in_(list(declared)))).all()}

    # --- reads on the hot path -----------------------------------------------------------

    def project_serial(self, repository_id: int, name: str) -> tuple[int, int] | None:
        """(project id, serial) for a normalized name in a repository, or None."""
        row = self._run(self._sql.project_serial, (repository_id, name)).first()
        return (row[0], row[1]) if row else None

    def project_names(self, repository_id: int) -> list[tuple[str, str]]:
        """(normalized, display) for every project of the repository that has files."""
        stmt = (
            select(Project.name, Project.display_name)
            .where(Project.repository_id == repository_id,
                   select(File.id).where(File.project_id == Project.id).exists())
            .order_by(Project.name)
        )
        return [(r[0], r[1]) for r in self.session.execute(stmt)]

    def files(self, project_id: int) -> list[File]:
        # Each file's metadata (with its long description) is loaded only when asked for:
        # the JSON API reads one release's, a yank none.
        stmt = select(File).where(File.project_id == project_id).order_by(
            File.filename).options(defer(File.info))
        return list(self.session.execute(stmt).scalars())

    def file(self, repository_id: int, project: str, filename: str) -> File | None:
        stmt = (
            select(File)
            .join(Project, File.project_id == Project.id)
            .where(Project.repository_id == repository_id, Project.name == project,
                   File.filename == filename)
        )
        return self.session.execute(stmt).scalar()

    def claimant(self, repository_ids: tuple[int, ...], filename: str, key: str
                 ) -> Claim | None:
        """The file that holds this filename or its key (names.filename_key) in these
        repositories (those that share a storage prefix, so a filename is one object for
        all of them), if any: what an upload checks first, without loading a File. The
        exact filename wins when a file from before the key rule holds it and another file
        the key."""
        rows = self._run(self._sql.claimant(len(repository_ids)),
                         (*repository_ids, key, filename)).fetchall()
        if not rows:
            return None
        row = next((r for r in rows if r[0] == filename), rows[0])
        return Claim(*row)

    def file_by_name(self, repository_id: int, filename: str) -> File | None:
        return self.session.execute(select(File).where(
            File.repository_id == repository_id, File.filename == filename)).scalar()

    def file_by_digest(self, repository_id: int, project: str, sha256: str
                       ) -> tuple[str, str] | None:
        """(filename, sha256) of a file of the project with these bytes, if any."""
        row = self._run(self._sql.file_by_digest, (repository_id, project, sha256)).first()
        return (row[0], row[1]) if row else None

    # --- writes --------------------------------------------------------------------------

    @property
    def _sql(self) -> _DriverSQL:
        return _DriverSQL.of(self.session.get_bind().dialect)

    def _run(self, sql: str, params: tuple):
        """One of the hot statements (_DriverSQL), in the session's transaction."""
        return self.session.connection().exec_driver_sql(sql, params)

    def bump_serial(self, repository_id: int, project_id: int | None = None) -> int:
        self.session.info[CHANGED] = True  # the commit will bump the beacon
        sql = self._sql
        serial = self._run(sql.bump_repository, (repository_id,)).scalar()
        if project_id is not None:
            self._run(sql.set_project_serial, (serial, project_id))
        return serial

    def ensure_project(self, repository_id: int, name: str, display_name: str) -> int:
        found = self.project_serial(repository_id, name)
        if found:
            return found[0]
        # Several uploads of a new project at once (a CI matrix) all get here: the first
        # insert wins, the others wait for its transaction and then take its row.
        sql = self._sql
        made = self._run(sql.insert_project,
                         sql.project_values(repository_id, name, display_name,
                                            utcnow())).scalar()
        return made if made is not None else self.project_serial(repository_id, name)[0]

    def add_file(self, repository_id: int, record: FileRecord,
                 claimed_in: tuple[int, ...] | None = None) -> tuple[int, Claim | None]:
        """Insert the row, which claims the filename and its key until commit: (the
        project's id, None), or (id, the file that holds them) when another upload got
        there first. A concurrent claim is waited for (its row lock on PostgreSQL, the
        write lock on SQLite), so the holder read here is committed. The caller bumps
        the serial just before committing, so the serial's row lock is held briefly.
        claimed_in: the repositories whose files share this one's storage keys."""
        project_id = self.ensure_project(repository_id, record.project, record.display_name)
        sql = self._sql
        values = sql.file_values(record, project_id, repository_id)
        while True:
            if self._run(sql.insert_file, values).rowcount == 1:
                return project_id, None
            holder = self.claimant(claimed_in or (repository_id,), record.filename,
                                   filename_key(record.filename))
            if holder is not None:
                return project_id, holder
            # Deleted between our insert and our look (PostgreSQL): the name is free.

    def replace_file(self, row: File, record: FileRecord) -> None:
        for key, value in record.row().items():
            setattr(row, key, value)
        self.session.flush()
        self.bump_serial(row.repository_id, row.project_id)

    def delete_files(self, rows: Iterable[File]) -> None:
        projects = set()
        for row in rows:
            projects.add((row.repository_id, row.project_id))
            self.session.delete(row)
        self.session.flush()
        for repository_id, pid in projects:
            self._drop_project_if_empty(pid)
            self.bump_serial(repository_id, pid)

    def _drop_project_if_empty(self, project_id: int) -> None:
        left = self.session.execute(
            select(func.count(File.id)).where(File.project_id == project_id)
        ).scalar()
        if not left:
            self.session.execute(delete(Project).where(Project.id == project_id))

    def set_yanked(self, rows: Iterable[File], reason: str | None, yanked: bool) -> None:
        projects = set()
        for row in rows:
            row.yanked = yanked
            row.yanked_reason = reason if yanked else None
            projects.add((row.repository_id, row.project_id))
        self.session.flush()
        for repository_id, pid in projects:
            self.bump_serial(repository_id, pid)

    def record_event(self, repository: str, action: str, user: str | None, project: str,
                     version: str | None = None, filename: str | None = None,
                     detail: str | None = None) -> None:
        sql = self._sql
        self._run(sql.insert_event, sql.event_values(
            utcnow(), repository, user, action, project, version, filename, detail))

    def record_events(self, repository: str, action: str, records: list[FileRecord],
                      detail: str | None = None, user: str | None = None) -> None:
        """One event per file in a single executemany, for batches (no Event objects)."""
        if not records:
            return
        now = utcnow()
        self.session.execute(insert(Event.__table__), [
            {"time": now, "repository": repository, "user": user, "action": action,
             "project": r.project, "version": r.version, "filename": r.filename,
             "detail": detail} for r in records])

    def events(self, repositories: Iterable[str], project: str) -> list[Event]:
        stmt = select(Event).where(Event.repository.in_(list(repositories)),
                                   Event.project == project).order_by(Event.id)
        return list(self.session.execute(stmt).scalars())

    # --- bulk operations for the rebuild -------------------------------------------------

    def all_filenames(self, repository_id: int) -> dict[str, tuple[int, str]]:
        """filename -> (file id, project name) of every file the repository holds."""
        stmt = select(File.filename, File.id, Project.name).join(
            Project, File.project_id == Project.id
        ).where(File.repository_id == repository_id)
        return {r[0]: (r[1], r[2]) for r in self.session.execute(stmt)}

    def bulk_add(self, repository_id: int, records: list[FileRecord],
                 keys_taken: set | None = None) -> int:
        """Insert records in few statements; rows another process added first are skipped.

        keys_taken: the filename keys held, kept by a caller that adds batch after batch
        to a repository that had no files (a rebuild), which spares a query per batch;
        None asks the database."""
        if not records:
            return 0
        dialect = self.session.get_bind().dialect.name
        names = {}
        for rec in records:
            names.setdefault(rec.project, rec.display_name)
        in_repo = Project.repository_id == repository_id
        existing = dict(
            self.session.execute(
                select(Project.name, Project.id).where(in_repo, Project.name.in_(list(names)))
            ).all()
        ) if len(names) < 500 else dict(
            self.session.execute(select(Project.name, Project.id).where(in_repo)).all())
        missing = [n for n in names if n not in existing]
        if missing:
            now = utcnow()
            self.session.execute(
                _insert_ignore(dialect, Project, ["repository_id", "name"]),
                [{"repository_id": repository_id, "name": n, "display_name": names[n],
                  "serial": 0, "created": now} for n in missing],
            )
            existing.update(
                self.session.execute(
                    select(Project.name, Project.id).where(in_repo,
                                                           Project.name.in_(missing))
                ).all()
            )
        rows = [rec.row() for rec in records]  # fresh dicts, filled in place
        for row, rec in zip(rows, records):
            row["project_id"] = existing[rec.project]
            row["repository_id"] = repository_id
        self._share_keys(repository_id, rows, keys_taken)
        self.session.execute(_insert_ignore(dialect, File), rows)
        serial = self.bump_serial(repository_id)
        self.session.execute(
            text(f"UPDATE projects SET serial = :serial, "
                 f"{refresh_sql(self.session.get_bind().dialect)} WHERE id IN :ids")
            .bindparams(bindparam("ids", expanding=True)),
            {"serial": serial, "ids": sorted({existing[r.project] for r in records})})
        return len(rows)

    def _share_keys(self, repository_id: int, rows: list[dict], taken: set | None) -> None:
        """A record whose filename key another file holds (two spellings stored before
        the key rule) is added without the key, so that it stays listed as it was."""
        if taken is None:
            taken = set()
            keys = list({r["filename_key"] for r in rows})
            for chunk in _chunks(keys, 500):
                taken.update(self.session.execute(
                    select(File.filename_key).where(File.repository_id == repository_id,
                                                    File.filename_key.in_(chunk))).scalars())
        for row in rows:
            if row["filename_key"] in taken:
                row["filename_key"] = None
            else:
                taken.add(row["filename_key"])

    def bulk_delete(self, file_ids: list[int]) -> None:
        if not file_ids:
            return
        projects = set()
        for chunk in _chunks(file_ids, 500):
            projects.update(
                self.session.execute(
                    select(File.repository_id, File.project_id)
                    .where(File.id.in_(chunk)).distinct()
                ).all()
            )
            self.session.execute(delete(File).where(File.id.in_(chunk)))
        for repository_id, pid in projects:
            self._drop_project_if_empty(pid)
            self.bump_serial(repository_id, pid)


def _insert_ignore(dialect: str, model, keys: list[str] | None = None):
    """An INSERT that skips rows clashing with a unique key (those in keys, or any).

    Core statements on the table, not the ORM entity: the ORM's bulk path costs several
    times the INSERT itself for thousands of rows."""
    table = model.__table__
    stmt = dialect_insert(dialect, table)
    return stmt.on_conflict_do_nothing(index_elements=keys) if stmt is not None \
        else insert(table)


def dialect_insert(dialect: str, table):
    """An INSERT that takes ON CONFLICT clauses (SQLite, PostgreSQL); None elsewhere."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
    return None


class _DriverSQL:
    """The statements of an upload, as the driver's own SQL.

    Built by SQLAlchemy Core, bumping the serial alone took 0.4 ms (statement objects,
    cache keys, parameter processing), the same through exec_driver_sql 0.06 ms; an upload
    makes seven of them. They still run on the session's connection, in its transaction,
    with SQLAlchemy's error wrapping (an IntegrityError is the same). Values go through the
    columns' own bind conversions (datetimes as SQLite stores them, JSON, booleans), so a
    row reads back exactly as one the ORM wrote.
    """

    _made: dict = {}

    @classmethod
    def of(cls, dialect) -> _DriverSQL:
        made = cls._made.get(dialect.name)
        if made is None:
            made = cls._made[dialect.name] = cls(dialect)
        return made

    def __init__(self, dialect):
        m = self.mark = _mark(dialect)
        self.project_serial = project_serial_sql(m)
        self._claimants: dict[int, str] = {}
        self.file_by_digest = ("SELECT f.filename, f.sha256 FROM files f JOIN projects p "
                               f"ON f.project_id = p.id WHERE f.repository_id = {m} AND "
                               f"p.name = {m} AND f.sha256 = {m} LIMIT 1")
        self.bump_repository = ("UPDATE repositories SET serial = serial + 1 "
                                f"WHERE id = {m} RETURNING serial")
        # Every change to a project's files bumps its serial: the same statement keeps
        # the columns the web UI lists it by (metadata.browse).
        self.set_project_serial = (f"UPDATE projects SET serial = {m}, {refresh_sql(dialect)} "
                                   f"WHERE id = {m}")
        self._project_cols = ("repository_id", "name", "display_name", "serial", "created")
        self._file_cols = ("project_id", "repository_id") + ROW_FIELDS
        self._event_cols = ("time", "repository", "user", "action", "project", "version",
                            "filename", "detail")
        # ON CONFLICT DO NOTHING (SQLite 3.24+, PostgreSQL): a name another upload
        # holds is an answer (no row, no row count), not an error that aborts the
        # transaction.
        self.insert_project = (_insert_sql(_PROJECTS, self._project_cols, m) +
                               " ON CONFLICT DO NOTHING RETURNING id")
        self.insert_file = _insert_sql(_FILES, self._file_cols, m) + " ON CONFLICT DO NOTHING"
        self.insert_event = _insert_sql(_EVENTS, self._event_cols, m)
        self._convert = {t.name: [_binder(t.c[c], dialect) for c in cols] for t, cols in (
            (_PROJECTS, self._project_cols), (_FILES, self._file_cols),
            (_EVENTS, self._event_cols))}

    def claimant(self, repositories: int) -> str:
        """The claimant query over that many repositories."""
        sql = self._claimants.get(repositories)
        if sql is None:
            m = self.mark
            marks = ", ".join([m] * repositories)
            sql = self._claimants[repositories] = (
                "SELECT f.filename, f.sha256, p.name, f.repository_id FROM files f JOIN "
                f"projects p ON f.project_id = p.id WHERE f.repository_id IN ({marks}) AND "
                f"(f.filename_key = {m} OR f.filename = {m})")
        return sql

    def _values(self, table, values) -> tuple:
        return tuple(v if convert is None or v is None else convert(v)
                     for convert, v in zip(self._convert[table.name], values))

    def project_values(self, repository_id, name, display_name, created) -> tuple:
        return self._values(_PROJECTS, (repository_id, name, display_name, 0, created))

    def file_values(self, record: FileRecord, project_id: int, repository_id: int) -> tuple:
        return self._values(_FILES, (project_id, repository_id, *record.row().values()))

    def event_values(self, *values) -> tuple:
        return self._values(_EVENTS, values)


def _insert_sql(table, columns, mark) -> str:
    names = ", ".join('"%s"' % c for c in columns)  # quoted: "user" is reserved on PostgreSQL
    return f"INSERT INTO {table.name} ({names}) VALUES ({', '.join([mark] * len(columns))})"


def _binder(column, dialect):
    return column.type.dialect_impl(dialect).bind_processor(dialect)


def _chunks(items, n):
    for i in range(0, len(items), n):
        yield items[i : i + n]
