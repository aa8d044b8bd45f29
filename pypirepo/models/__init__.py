"""SQLAlchemy tables of the metadata cache. No queries here: they live in pypirepo.metadata."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .meta import NAMING_CONVENTION, metadata  # noqa: F401


class Base(DeclarativeBase):
    metadata = metadata


class IndexState(Base):
    """One row: the serial that every change bumps.

    Pages are cached per process and keyed by serial, so a change made by any process that
    shares the database is seen on the very next request.
    """

    __tablename__ = "index_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)  # normalized
    display_name: Mapped[str] = mapped_column(String(255), nullable=False)
    serial: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    created: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    files: Mapped[list[File]] = relationship(
        back_populates="project", cascade="all, delete-orphan", passive_deletes=True
    )


class File(Base):
    __tablename__ = "files"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, index=True
    )
    filename: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    # names.filename_key(filename): two spellings of one distribution are one file. NULL
    # only for a file that predates the rule and shares its key with an older one (the
    # migration and a rebuild keep both listed, the first one holding the key).
    filename_key: Mapped[str | None] = mapped_column(String(512), unique=True, index=True)
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
    project: Mapped[Project] = relationship(back_populates="files")


def column_limit(table, column: str) -> int | None:
    """The most characters a string column holds (PostgreSQL enforces it, SQLite not)."""
    return getattr(table.__table__.c[column].type, "length", None)


class Event(Base):
    """Who did what and when: uploads, deletes, yanks."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    user: Mapped[str | None] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    project: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    version: Mapped[str | None] = mapped_column(String(128))
    filename: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[str | None] = mapped_column(Text)
