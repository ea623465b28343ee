"""attachment bytes

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07

One attachment store for the cluster (issue 20): the attachments' bytes in
the database, in a table of their own (``attachment_blob``, keyed by
``attachment.storage_name``), so every host serves every file and erasure,
retention and backup reach them in one place (docs/attachments.md, "Where
the bytes are").

Files an older jutella left in ``<data_dir>/attachments/`` are moved in by
``jutella`` itself right after the migrations (chat/attachments.py
``import_disk_files``, run by every command, ``serve`` included): a migration
does not know the data dir of each host, and each host's own files must be
read on that host.
"""
from alembic import op
import sqlalchemy as sa

import jutella.store.types  # noqa: F401


revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

WHEN = jutella.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('attachment_blob',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', WHEN, nullable=False),
    sa.PrimaryKeyConstraint('name'),
    )
    if op.get_bind().dialect.name == 'postgresql':
        # images and PDFs are compressed already: kept out of line without
        # trying pglz on them, which also lets substr() read only the chunks a
        # streamed response asks for
        op.execute('ALTER TABLE attachment_blob ALTER COLUMN data SET STORAGE EXTERNAL')


def downgrade() -> None:
    op.drop_table('attachment_blob')
