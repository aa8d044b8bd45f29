"""repositories: several named indexes, each with its own projects, files and serial

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

A database of one index becomes one of three repositories, as a server with no
`repositories` setting declares them: files uploaded here belong to the hosted `local`
(id 1), files cached from the upstream to the proxy `pypi` (id 2), and both keep the
index's serial. A project that held files of both kinds becomes a project in each.
"""
import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

LOCAL, PYPI = 1, 2


def upgrade():
    conn = op.get_bind()
    serial = conn.execute(sa.text("SELECT serial FROM index_state WHERE id = 1")).scalar() or 0
    repositories = op.create_table(
        "repositories",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("serial", sa.BigInteger, nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.UniqueConstraint("name", name="uq_repositories_name"),
    )
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    op.bulk_insert(repositories, [
        {"id": LOCAL, "name": "local", "kind": "hosted", "serial": serial, "created": now},
        {"id": PYPI, "name": "pypi", "kind": "proxy", "serial": serial, "created": now},
    ])
    if conn.dialect.name == "postgresql":
        # Explicit ids above: the next row the server makes must not collide with them.
        conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('repositories', 'id'), "
                             "(SELECT max(id) FROM repositories))"))

    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("repository_id", sa.Integer, nullable=False,
                                   server_default=str(LOCAL)))
        batch.drop_constraint("uq_projects_name", type_="unique")
        batch.create_unique_constraint("uq_projects_repository_id_name",
                                       ["repository_id", "name"])
        batch.create_foreign_key("fk_projects_repository_id_repositories", "repositories",
                                 ["repository_id"], ["id"], ondelete="CASCADE")
    with op.batch_alter_table("files") as batch:
        batch.add_column(sa.Column("repository_id", sa.Integer, nullable=False,
                                   server_default=str(LOCAL)))
        batch.add_column(sa.Column("provenance", sa.JSON))
        batch.drop_constraint("uq_files_filename", type_="unique")
        batch.drop_index("ix_files_filename_key")
        batch.create_unique_constraint("uq_files_repository_id_filename",
                                       ["repository_id", "filename"])
        batch.create_unique_constraint("uq_files_repository_id_filename_key",
                                       ["repository_id", "filename_key"])

    # Cached upstream files move to the proxy, with their project (split when it also
    # holds uploads: each repository gets a project row of its own).
    if conn.dialect.name == "postgresql":
        # The split's rows take ids from the sequence: make sure it is past every id (a
        # database restored from a dump may have it behind).
        conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('projects', 'id'), "
                             "GREATEST((SELECT max(id) FROM projects), 1))"))
    mixed = conn.execute(sa.text(
        "SELECT p.id, p.name, p.display_name, p.serial, p.created FROM projects p "
        "WHERE EXISTS (SELECT 1 FROM files f WHERE f.project_id = p.id AND f.origin = 'upstream') "
        "AND EXISTS (SELECT 1 FROM files f WHERE f.project_id = p.id AND f.origin != 'upstream')"
    )).fetchall()
    for pid, name, display, pserial, created in mixed:
        conn.execute(sa.text(
            "INSERT INTO projects (repository_id, name, display_name, serial, created) "
            "VALUES (:repo, :name, :display, :serial, :created)"),
            {"repo": PYPI, "name": name, "display": display, "serial": pserial,
             "created": created})
        new = conn.execute(sa.text("SELECT id FROM projects WHERE repository_id = :repo AND "
                                   "name = :name"), {"repo": PYPI, "name": name}).scalar()
        conn.execute(sa.text("UPDATE files SET project_id = :new WHERE project_id = :old AND "
                             "origin = 'upstream'"), {"new": new, "old": pid})
    conn.execute(sa.text(
        "UPDATE projects SET repository_id = :repo WHERE NOT EXISTS (SELECT 1 FROM files f "
        "WHERE f.project_id = projects.id AND f.origin != 'upstream') AND EXISTS "
        "(SELECT 1 FROM files f WHERE f.project_id = projects.id)"), {"repo": PYPI})
    conn.execute(sa.text("UPDATE files SET repository_id = (SELECT p.repository_id FROM "
                         "projects p WHERE p.id = files.project_id)"))

    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("repository", sa.String(64)))
        batch.drop_index("ix_events_project")
        batch.create_index("ix_events_repository_project", ["repository", "project"])
    conn.execute(sa.text("UPDATE events SET repository = CASE WHEN action = 'cache' "
                         "THEN 'pypi' ELSE 'local' END"))

    with op.batch_alter_table("upstream_pages") as batch:
        batch.add_column(sa.Column("repository_id", sa.Integer, nullable=False,
                                   server_default=str(PYPI)))
        batch.drop_constraint("uq_upstream_pages_project", type_="unique")
        batch.create_unique_constraint("uq_upstream_pages_repository_id_project",
                                       ["repository_id", "project"])
        batch.create_foreign_key("fk_upstream_pages_repository_id_repositories",
                                 "repositories", ["repository_id"], ["id"], ondelete="CASCADE")
    # The defaults only filled the rows there were; from now on every insert names it.
    for table in ("projects", "files", "upstream_pages"):
        with op.batch_alter_table(table) as batch:
            batch.alter_column("repository_id", server_default=None)
    op.drop_table("index_state")


def downgrade():
    raise NotImplementedError("repositories cannot be folded back into one index; restore "
                              "the database from a backup, or rebuild it from storage with "
                              "the older release")
