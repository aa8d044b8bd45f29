"""files.filename_key: one file per distribution, however its filename is spelled

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""
import logging

import sqlalchemy as sa
from alembic import op

from pypirepo.names import filename_key

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")


def upgrade():
    op.add_column("files", sa.Column("filename_key", sa.String(512)))
    files = sa.table("files", sa.column("id"), sa.column("filename"),
                     sa.column("filename_key"))
    conn = op.get_bind()
    seen: dict[str, str] = {}
    keyed = []
    for file_id, filename in conn.execute(sa.select(files.c.id, files.c.filename)
                                          .order_by(files.c.id)):
        key = filename_key(filename)
        if key in seen:
            # Uploaded before the rule, under another spelling of a file already here:
            # both stay listed, the older one holds the key (delete one of them).
            log.warning("%s is the same distribution as %s; both stay listed", filename,
                        seen[key])
            continue
        seen[key] = filename
        keyed.append({"file_id": file_id, "key": key})
    if keyed:
        conn.execute(files.update().where(files.c.id == sa.bindparam("file_id"))
                     .values(filename_key=sa.bindparam("key")), keyed)
    op.create_index("ix_files_filename_key", "files", ["filename_key"], unique=True)


def downgrade():
    op.drop_index("ix_files_filename_key", table_name="files")
    with op.batch_alter_table("files") as batch:
        batch.drop_column("filename_key")
