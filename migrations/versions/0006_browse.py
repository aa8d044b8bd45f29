"""projects.summary and projects.last_upload, for the web UI's project lists

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

A repository's page lists its projects by name or by last upload, searched by name and
summary, a page at a time: with 100,000 projects that must come from an index, not from
every file's row. Each project row now carries the time of its latest upload and the
summary of that upload, kept by the statement that bumps the project's serial (every
change to a project's files makes it), and filled here for the projects there are; two
indexes serve the lists by last upload (one repository's, and a group's in one walk).

ix_projects_name serves the freshness read every index request makes (`WHERE name = ?`,
all repositories at once), which no index served since 0004 made names unique per
repository only.
"""
import sqlalchemy as sa
from alembic import op

from pypirepo.metadata.browse import refresh_projects_sql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("summary", sa.String(512)))
        batch.add_column(sa.Column("last_upload", sa.DateTime))
    op.create_index("ix_projects_name", "projects", ["name", "repository_id"])
    op.create_index("ix_projects_repository_id_last_upload", "projects",
                    ["repository_id", "last_upload", "id"])
    op.create_index("ix_projects_last_upload", "projects", ["last_upload", "id",
                                                            "repository_id"])
    conn = op.get_bind()
    conn.execute(sa.text(refresh_projects_sql(conn.dialect, "")))


def downgrade():
    op.drop_index("ix_projects_last_upload", table_name="projects")
    op.drop_index("ix_projects_repository_id_last_upload", table_name="projects")
    op.drop_index("ix_projects_name", table_name="projects")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("last_upload")
        batch.drop_column("summary")
