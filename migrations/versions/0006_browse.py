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

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _fill_sql(dialect) -> str:
    """Each project's latest upload time and that upload's summary, from its files: the
    statement as it stood at this revision (a migration must not change with the app)."""
    summary = "(f.info ->> 'summary')" if dialect.name == "postgresql" \
        else "json_extract(f.info, '$.summary')"
    return (
        "UPDATE projects SET "
        "last_upload = (SELECT max(f.upload_time) FROM files f "
        "WHERE f.project_id = projects.id), "
        f"summary = (SELECT substr({summary}, 1, 512) FROM files f "
        "WHERE f.project_id = projects.id ORDER BY f.upload_time DESC, f.id DESC LIMIT 1)")


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
    conn.execute(sa.text(_fill_sql(conn.dialect)))


def downgrade():
    op.drop_index("ix_projects_last_upload", table_name="projects")
    op.drop_index("ix_projects_repository_id_last_upload", table_name="projects")
    op.drop_index("ix_projects_name", table_name="projects")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("last_upload")
        batch.drop_column("summary")
