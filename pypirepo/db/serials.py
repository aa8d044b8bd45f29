"""The freshness reads every index request makes, on connections kept for them."""

from __future__ import annotations

import time
from collections import namedtuple

from ..models import File
from .beacon import RECHECK, attach

# What the simple API and downloads need of a file; Serials.file_rows() returns these.
FILE_ROW_COLUMNS = ("filename", "version", "origin", "sha256", "requires_python", "yanked",
                    "yanked_reason", "size", "upload_time", "metadata_sha256")
FileRow = namedtuple("FileRow", FILE_ROW_COLUMNS)
_FILES = File.__table__
_MAX_ANSWERS = 10_000


def mark(dialect) -> str:
    """The driver's parameter marker: SQLite's qmark, else format/pyformat's %s."""
    return "?" if dialect.paramstyle == "qmark" else "%s"


def project_serial_sql(m: str) -> str:
    return f"SELECT id, serial FROM projects WHERE repository_id = {m} AND name = {m}"


class Serials:
    """The freshness checks every index request makes, on connections kept for them.

    A page cache hit costs one of these queries and nothing else. Through the ORM it would
    cost twenty times the query (session, compilation, transaction reset), and even a pool
    checkout per request is a quarter of a cached page's time, so a few autocommit
    connections are kept for nothing but these reads, taken and put back around each
    query by whichever thread asks (a list's pop and append). They used to be one per
    thread: the first burst on a new server (uv asking for 30 pages at once) then opened
    a connection in each of its 32 threads, on the path of the answers.

    On a SQLite file even that query is asked only when the database's beacon says that
    something changed since it was last asked (pypirepo.db.beacon).
    """

    def __init__(self, engine):
        self.engine = engine
        self._idle: list = []  # (connection, its detached pool wrapper) not in use
        self._beacon = attach(engine)
        # key -> (beacon count before the query, its answer, when it was asked). Shared by
        # the threads: an entry is only replaced whole, and a racing older answer that
        # lands last carries its older count, so the next read asks again.
        self._answers: dict = {}
        m = mark(engine.dialect)
        # Every repository's row of a name at once: a group asks for its members' in one
        # read, and a hosted repository for its own out of the same answer.
        self._projects_sql = f"SELECT repository_id, id, serial FROM projects WHERE name = {m}"
        self._repository_sql = f"SELECT serial FROM repositories WHERE id = {m}"
        self._upstream_page_sql = (f"SELECT 1 FROM upstream_pages WHERE repository_id = {m} "
                                   f"AND project = {m}")
        self._file_rows_sql = (f"SELECT {', '.join(FILE_ROW_COLUMNS)} FROM files "
                               f"WHERE project_id = {m} ORDER BY filename")
        # The column types' own conversions (SQLite keeps datetimes as text, booleans as
        # integers), as SQLAlchemy would apply them to the same query.
        dialect = engine.dialect
        self._file_row_processors = [
            _FILES.c[name].type.dialect_impl(dialect).result_processor(dialect, None)
            for name in FILE_ROW_COLUMNS]

    def close(self) -> None:
        """Close the connections kept for these reads (the pool does not know them)."""
        while self._idle:
            conn, _ = self._idle.pop()
            conn.close()

    def _checkout(self):
        try:
            return self._idle.pop()
        except IndexError:
            pass
        pooled = self.engine.raw_connection()
        conn = pooled.driver_connection
        pooled.detach()  # ours from now on; the pool must not hand it out
        if self.engine.dialect.name == "sqlite":
            conn.isolation_level = None  # autocommit: each read sees the latest commit
        else:
            conn.autocommit = True
        return conn, pooled  # the detached wrapper is kept alive with it

    def _fetch(self, sql, params, every: bool = False):
        for attempt in (1, 2):
            held = self._checkout()
            conn = held[0]
            try:
                cur = conn.cursor()
                try:
                    cur.execute(sql, params)
                    rows = cur.fetchall() if every else cur.fetchone()
                finally:
                    cur.close()
            except self.engine.dialect.loaded_dbapi.Error:
                # A dropped connection (database restarted): open a new one, once.
                try:
                    conn.close()
                except Exception:  # noqa: BLE001 - it is already broken
                    pass
                if attempt == 2:
                    raise
                continue
            self._idle.append(held)
            return rows

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

    def repository(self, repository_id: int) -> int:
        """The repository's serial: what its root page is cached under."""
        return self._unless_unchanged(
            repository_id, lambda: self._fetch(self._repository_sql, (repository_id,))[0])

    def projects(self, name: str) -> dict[int, tuple[int, int]]:
        """repository id -> (project id, serial) of every repository holding the name."""
        def ask():
            return {row[0]: (row[1], row[2])
                    for row in self._fetch(self._projects_sql, (name,), every=True)}

        return self._unless_unchanged(name, ask)

    def file_rows(self, project_id: int) -> list[FileRow]:
        """The project's files (sorted by filename): what its pages and downloads read,
        once per serial. One read on this thread's connection: no session, no pool
        checkout, no File objects."""
        processors = self._file_row_processors
        return [FileRow(*(value if convert is None or value is None else convert(value)
                          for convert, value in zip(processors, row)))
                for row in self._fetch(self._file_rows_sql, (project_id,), every=True)]

    def has_upstream_page(self, repository_id: int, project: str) -> bool:
        """Whether a proxy keeps an upstream page of the project: a never-seen project
        (every project of a cold install) costs this one read, not a pooled connection."""
        return self._fetch(self._upstream_page_sql, (repository_id, project)) is not None
