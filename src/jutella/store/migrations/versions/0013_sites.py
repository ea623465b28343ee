"""sites

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

The sites allowed to embed the widget, edited by admins in the console's
Embed page (chat/sites.py, docs/sites.md). A later issue adds per-site
profiles to this table.
"""
from alembic import op
import sqlalchemy as sa

import jutella.store.types  # noqa: F401


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
WHEN = jutella.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('site',
    sa.Column('id', BIG, nullable=False),
    sa.Column('origin', sa.String(length=300), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=True),
    sa.Column('created_at', WHEN, nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('origin'),
    sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table('site')
