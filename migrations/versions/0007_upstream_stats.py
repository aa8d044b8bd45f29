"""upstream_stats: how each proxy repository's upstream answered (the admin overview)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29

One row per proxy repository: upstream hits, misses and errors and the last error,
added to by every process sharing the database every few seconds
(pypirepo.fallback.stats), never once per request.
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "upstream_stats",
        sa.Column("repository_id", sa.Integer,
                  sa.ForeignKey("repositories.id", ondelete="CASCADE",
                                name="fk_upstream_stats_repository_id_repositories"),
                  nullable=False),
        sa.Column("hits", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("misses", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("errors", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("last_error_at", sa.DateTime),
        sa.PrimaryKeyConstraint("repository_id", name="pk_upstream_stats"),
    )


def downgrade():
    op.drop_table("upstream_stats")
