"""upstream_pages: the fallback's project pages, kept across restarts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "upstream_pages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("upstream", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("etag", sa.Text),
        sa.Column("fetched", sa.DateTime, nullable=False),
        sa.Column("files", sa.JSON),
        sa.UniqueConstraint("project", name="uq_upstream_pages_project"),
    )


def downgrade():
    op.drop_table("upstream_pages")
