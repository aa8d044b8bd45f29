"""The tables of access: users, groups and grants (the sql backend), API tokens and
project owners (both backends: they are made while the server runs)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Index,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from . import Base


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    password_hash: Mapped[str | None] = mapped_column(Text)  # None: no password login
    admin: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)


class Group(Base):
    __tablename__ = "groups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)


class GroupMember(Base):
    __tablename__ = "group_members"
    __table_args__ = (PrimaryKeyConstraint("group_id", "user_id"),)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))


class GrantRow(Base):
    """A grant (pypirepo.access.model.Grant) kept by the sql backend."""

    __tablename__ = "grants"
    __table_args__ = (UniqueConstraint("repository", "pattern", "permission", "principal"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository: Mapped[str] = mapped_column(String(64), nullable=False)
    pattern: Mapped[str] = mapped_column(String(255), nullable=False)
    permission: Mapped[str] = mapped_column(String(16), nullable=False)
    principal: Mapped[str] = mapped_column(String(255), nullable=False)


class AccessState(Base):
    """One row: a counter every change to users, groups or grants bumps, so that every
    process sharing the database recompiles its access policy."""

    __tablename__ = "access_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class ApiToken(Base):
    """A token is shown once; only its digest is kept (a random secret needs no slow
    hash: sha256 makes each check a lookup)."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)  # shown in listings
    permissions: Mapped[list] = mapped_column(JSON, nullable=False)  # ["read", "upload"]
    repositories: Mapped[list] = mapped_column(JSON, nullable=False)  # names or ["*"]
    projects: Mapped[list] = mapped_column(JSON, nullable=False)  # patterns or ["*"]
    note: Mapped[str | None] = mapped_column(Text)
    created: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    expires: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_used: Mapped[dt.datetime | None] = mapped_column(DateTime)
    revoked: Mapped[dt.datetime | None] = mapped_column(DateTime)


class ProjectOwner(Base):
    """Who owns a project of a repository: whoever created it, and whom they added."""

    __tablename__ = "project_owners"
    __table_args__ = (PrimaryKeyConstraint("repository", "project", "user"),
                      Index("ix_project_owners_repository_user", "repository", "user"))
    repository: Mapped[str] = mapped_column(String(64))
    project: Mapped[str] = mapped_column(String(255))
    user: Mapped[str] = mapped_column(String(255))
