"""site profiles

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07

How the widget looks and greets per site (chat/sites.py, docs/sites.md): the
``site_profile`` table (one row per site with a profile of its own, one for
the default), and the site each conversation and offline message came from.
"""
from alembic import op
import sqlalchemy as sa

import jutella.store.types  # noqa: F401


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
WHEN = jutella.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('site_profile',
    sa.Column('key', sa.String(length=24), nullable=False),
    sa.Column('site_id', BIG, nullable=True),
    sa.Column('colour', sa.String(length=7), nullable=True),
    sa.Column('position', sa.String(length=8), nullable=True),
    sa.Column('texts', sa.JSON(), nullable=False),
    sa.Column('departments', sa.JSON(), nullable=False),
    sa.Column('logo', sa.LargeBinary(), nullable=True),
    sa.Column('logo_hash', sa.String(length=64), nullable=True),
    sa.Column('updated_at', WHEN, nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('key'),
    sa.UniqueConstraint('site_id'),
    )
    for table in ('conversation', 'offline_message'):
        if op.get_bind().dialect.name == 'sqlite':
            # in place (no table rebuild: that would drop AUTOINCREMENT, migration 0009)
            op.execute(f'ALTER TABLE {table} ADD COLUMN site_id INTEGER REFERENCES site(id) ON DELETE SET NULL')
        else:
            op.add_column(table, sa.Column('site_id', BIG, nullable=True))
            op.create_foreign_key(f'fk_{table}_site_id', table, 'site', ['site_id'], ['id'], ondelete='SET NULL')
        op.create_index(f'ix_{table}_site_id', table, ['site_id'], unique=False)


def downgrade() -> None:
    for table in ('offline_message', 'conversation'):
        op.drop_index(f'ix_{table}_site_id', table_name=table)
        if op.get_bind().dialect.name == 'sqlite':
            op.execute(f'ALTER TABLE {table} DROP COLUMN site_id')  # SQLite 3.35+: in place, as 0014
        else:
            op.drop_constraint(f'fk_{table}_site_id', table, type_='foreignkey')
            op.drop_column(table, 'site_id')
    op.drop_table('site_profile')
