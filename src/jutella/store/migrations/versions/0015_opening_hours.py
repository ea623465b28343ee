"""opening hours

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

Opening hours per department and for the whole service (docs/hours.md).
"""
from alembic import op
import sqlalchemy as sa

import jutella.store.types  # noqa: F401


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('opening_hours',
    sa.Column('key', sa.String(length=24), nullable=False),
    sa.Column('department_id', BIG, nullable=True),
    sa.Column('weekly', sa.JSON(), nullable=False),
    sa.Column('exceptions', sa.JSON(), nullable=False),
    sa.Column('updated_at', jutella.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['department_id'], ['department.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('key'),
    )


def downgrade() -> None:
    op.drop_table('opening_hours')
