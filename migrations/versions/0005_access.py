"""access: users, groups and grants (the sql backend), API tokens, project owners

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("password_hash", sa.Text),
        sa.Column("admin", sa.Boolean, nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.UniqueConstraint("name", name="uq_users_name"),
    )
    op.create_table(
        "groups",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.UniqueConstraint("name", name="uq_groups_name"),
    )
    op.create_table(
        "group_members",
        sa.Column("group_id", sa.Integer, sa.ForeignKey(
            "groups.id", ondelete="CASCADE", name="fk_group_members_group_id_groups"),
            nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey(
            "users.id", ondelete="CASCADE", name="fk_group_members_user_id_users"),
            nullable=False),
        sa.PrimaryKeyConstraint("group_id", "user_id", name="pk_group_members"),
    )
    op.create_table(
        "grants",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("repository", sa.String(64), nullable=False),
        sa.Column("pattern", sa.String(255), nullable=False),
        sa.Column("permission", sa.String(16), nullable=False),
        sa.Column("principal", sa.String(255), nullable=False),
        sa.UniqueConstraint("repository", "pattern", "permission", "principal",
                            name="uq_grants_repository_pattern_permission_principal"),
    )
    state = op.create_table(
        "access_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.bulk_insert(state, [{"id": 1, "version": 0}])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("permissions", sa.JSON, nullable=False),
        sa.Column("repositories", sa.JSON, nullable=False),
        sa.Column("projects", sa.JSON, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("expires", sa.DateTime),
        sa.Column("last_used", sa.DateTime),
        sa.Column("revoked", sa.DateTime),
        sa.UniqueConstraint("digest", name="uq_api_tokens_digest"),
    )
    op.create_index("ix_api_tokens_user", "api_tokens", ["user"])
    op.create_table(
        "project_owners",
        sa.Column("repository", sa.String(64), nullable=False),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("user", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("repository", "project", "user", name="pk_project_owners"),
    )
    op.create_index("ix_project_owners_repository_user", "project_owners",
                    ["repository", "user"])


def downgrade():
    for table in ("project_owners", "api_tokens", "access_state", "grants",
                  "group_members", "groups", "users"):
        op.drop_table(table)
