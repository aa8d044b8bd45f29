"""projects, files, events and the index serial

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "index_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("serial", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(sa.table("index_state", sa.column("id"), sa.column("serial")),
                   [{"id": 1, "serial": 0}])
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("serial", sa.BigInteger, nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.UniqueConstraint("name", name="uq_projects_name"),
    )
    op.create_table(
        "files",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer,
                  sa.ForeignKey("projects.id", ondelete="CASCADE",
                                name="fk_files_project_id_projects"), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("canonical_version", sa.String(128), nullable=False),
        sa.Column("packagetype", sa.String(32), nullable=False),
        sa.Column("python_version", sa.String(128), nullable=False),
        sa.Column("requires_python", sa.String(255)),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("md5", sa.String(32)),
        sa.Column("blake2_256", sa.String(64)),
        sa.Column("metadata_sha256", sa.String(64)),
        sa.Column("upload_time", sa.DateTime, nullable=False),
        sa.Column("uploader", sa.String(255)),
        sa.Column("yanked", sa.Boolean, nullable=False),
        sa.Column("yanked_reason", sa.Text),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("info", sa.JSON),
        sa.UniqueConstraint("filename", name="uq_files_filename"),
    )
    op.create_index("ix_files_project_id", "files", ["project_id"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("time", sa.DateTime, nullable=False),
        sa.Column("user", sa.String(255)),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("version", sa.String(128)),
        sa.Column("filename", sa.String(255)),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_events_project", "events", ["project"])


def downgrade():
    op.drop_table("events")
    op.drop_table("files")
    op.drop_table("projects")
    op.drop_table("index_state")
