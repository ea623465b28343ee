"""erasure ledger

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

The erasure ledger (privacy/ledger.py): keyed hashes of what each erasure
removed, so that ``jutella restore`` erases it again in an older backup.
"""
from alembic import op
import sqlalchemy as sa

import jutella.store.types  # noqa: F401


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
WHEN = jutella.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('erasure_ledger',
    sa.Column('id', BIG, nullable=False),
    sa.Column('batch', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('erased_at', WHEN, nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True,
    )
    op.create_index('ix_erasure_ledger_batch', 'erasure_ledger', ['batch'])
    op.create_index('ix_erasure_ledger_erased_at', 'erasure_ledger', ['erased_at'])


def downgrade() -> None:
    op.drop_index('ix_erasure_ledger_erased_at', table_name='erasure_ledger')
    op.drop_index('ix_erasure_ledger_batch', table_name='erasure_ledger')
    op.drop_table('erasure_ledger')
