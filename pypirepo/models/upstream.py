"""The upstream's project pages as last seen, so that a restart or an outage keeps them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from . import Base


class UpstreamPage(Base):
    """A proxy repository's last answer from its upstream for a project."""

    __tablename__ = "upstream_pages"
    __table_args__ = (UniqueConstraint("repository_id", "project"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False)
    project: Mapped[str] = mapped_column(String(255), nullable=False)  # normalized
    # Which upstream the answer came from: a changed fallback URL makes every row stale.
    upstream: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # found | not_found
    etag: Mapped[str | None] = mapped_column(Text)
    fetched: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)  # naive UTC
    files: Mapped[list | None] = mapped_column(JSON)  # pypirepo.upstream.parse's dicts


class UpstreamStats(Base):
    """How a proxy repository's upstream answered, summed over every process that shares
    the database (pypirepo.fallback.stats adds each process's counts every few seconds).
    hits: it had the page or file asked for; misses: it had no such project; errors: it
    could not be asked or its answer was refused (the last one said here)."""

    __tablename__ = "upstream_stats"
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True)
    hits: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    misses: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    errors: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[dt.datetime | None] = mapped_column(DateTime)  # naive UTC
