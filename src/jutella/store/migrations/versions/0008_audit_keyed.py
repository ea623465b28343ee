"""audit keyed

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

The audit log's chain becomes keyed (HMAC-SHA256, the key outside the
database; accounts/audit.py, docs/security.md). Rows written before are left
as they are, hashed with the old public algorithm: ``audit_head.keyed`` is
false when there are such rows, and the next row jutella writes is an
``audit.keyed`` row that seals them (its keyed hash covers the last old
row's hash, so none before it can change). A database with no audit row yet
starts keyed.
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.add_column(sa.Column('keyed', sa.Boolean(), server_default=sa.true(), nullable=False))
    op.execute("UPDATE audit_head SET keyed = (seq = 0)")


def downgrade() -> None:
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.drop_column('keyed')
