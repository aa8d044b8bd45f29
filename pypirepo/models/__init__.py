"""SQLAlchemy tables of the metadata cache. No queries here: they live in pypirepo.metadata."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .meta import NAMING_CONVENTION, metadata  # noqa: F401


class Base(DeclarativeBase):
    metadata = metadata


class Repository(Base):
    """A repository the ini declares (hosted, proxy, group...), with the serial that every
    change to it bumps.

    Pages are cached per process and keyed by their repository's serials, so a change made
    by any process that shares the database is seen on the very next request, and a
    change to one repository leaves the pages of the others cached. Rows are made at
    start-up for the declared names and kept when a name is no longer declared, so that
    declaring it again finds its projects.
    """

    __tablename__ = "repositories"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    serial: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    created: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)


class Project(Base):
    """A project of one repository: the same name may be a project in several."""

    __tablename__ = "projects"
    __table_args__ = (
        UniqueConstraint("repository_id", "name"),
        # The freshness read of every index request asks by name across repositories.
        Index("ix_projects_name", "name", "repository_id"),
        # The web UI's lists by last upload, a page at a time: one repository's, and
        # several (a group's) in one walk.
        Index("ix_projects_repository_id_last_upload", "repository_id", "last_upload", "id"),
        Index("ix_projects_last_upload", "last_upload", "id", "repository_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)  # normalized
    display_name: Mapped[str] = mapped_column(String(255), nullable=False)
    serial: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    created: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    # Derived from the files, kept by every statement that bumps the project's serial
    # (metadata.browse.REFRESH): what the web UI lists, sorts and searches by.
    summary: Mapped[str | None] = mapped_column(String(512))  # of the latest upload
    last_upload: Mapped[dt.datetime | None] = mapped_column(DateTime)
    files: Mapped[list[File]] = relationship(
        back_populates="project", cascade="all, delete-orphan", passive_deletes=True
    )


class File(Base):
    """A stored file of a project. Filenames (and their keys) are unique per repository:
    the same release may sit in `staging` and in `release`."""

    __tablename__ = "files"
    __table_args__ = (UniqueConstraint("repository_id", "filename"),
                      UniqueConstraint("repository_id", "filename_key"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, index=True
    )
    # The project's repository, kept on the row too: the unique keys above need it.
    repository_id: Mapped[int] = mapped_column(Integer, nullable=False)
    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    # names.filename_key(filename): two spellings of one distribution are one file. NULL
    # only for a file that predates the rule and shares its key with an older one (the
    # migration and a rebuild keep both listed, the first one holding the key).
    filename_key: Mapped[str | None] = mapped_column(String(512))
    version: Mapped[str] = mapped_column(String(128), nullable=False)
    canonical_version: Mapped[str] = mapped_column(String(128), nullable=False)
    packagetype: Mapped[str] = mapped_column(String(32), nullable=False)
    python_version: Mapped[str] = mapped_column(String(128), nullable=False, default="")
    requires_python: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    md5: Mapped[str | None] = mapped_column(String(32))
    blake2_256: Mapped[str | None] = mapped_column(String(64))
    metadata_sha256: Mapped[str | None] = mapped_column(String(64))
    upload_time: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)  # naive UTC
    uploader: Mapped[str | None] = mapped_column(String(255))
    yanked: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    yanked_reason: Mapped[str | None] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(16), nullable=False, default="private")
    info: Mapped[dict | None] = mapped_column(JSON)
    # Where the file came from besides an upload here: {"promoted_from": repository,
    # "promoted_by": user, "promoted_at": time} or {"upstream": url}.
    provenance: Mapped[dict | None] = mapped_column(JSON)
    project: Mapped[Project] = relationship(back_populates="files")


def column_limit(table, column: str) -> int | None:
    """The most characters a string column holds (PostgreSQL enforces it, SQLite not)."""
    return getattr(table.__table__.c[column].type, "length", None)


class Event(Base):
    """Who did what and when: uploads, deletes, yanks, promotions, in which repository."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_repository_project", "repository", "project"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository: Mapped[str | None] = mapped_column(String(64))
    time: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    user: Mapped[str | None] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    project: Mapped[str] = mapped_column(String(255), nullable=False)
    version: Mapped[str | None] = mapped_column(String(128))
    filename: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[str | None] = mapped_column(Text)


# Every table in Base.metadata, whichever module a caller imports first.
from . import access, upstream  # noqa: E402,F401
