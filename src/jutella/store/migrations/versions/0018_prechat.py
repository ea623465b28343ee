"""prechat

Revision ID: 0018
Revises: 0016
Create Date: 2026-12-07

The pre-chat form per site (chat/prechat.py, docs/prechat.md): its
configuration in ``prechat_form`` (one row per site origin, '' the default
for every site without its own), and what the visitor gave on it, kept with
the conversation (personal data: erased, exported, rectified and kept for as
long as the conversation).
"""
from alembic import op
import sqlalchemy as sa
import jutella.store.types


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('prechat_form',
    sa.Column('origin', sa.String(length=300), nullable=False),
    sa.Column('name_mode', sa.String(length=8), nullable=False, server_default='off'),
    sa.Column('email_mode', sa.String(length=8), nullable=False, server_default='off'),
    sa.Column('topic_mode', sa.String(length=8), nullable=False, server_default='off'),
    sa.Column('topics', sa.JSON(), nullable=False),
    sa.Column('updated_at', jutella.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('origin'),
    )
    op.add_column('conversation', sa.Column('prechat_name', sa.String(length=100), nullable=True))
    op.add_column('conversation', sa.Column('prechat_email', sa.String(length=254), nullable=True))
    op.add_column('conversation', sa.Column('prechat_topic', sa.String(length=100), nullable=True))


def downgrade() -> None:
    # SQLite (3.35+) drops the columns in place: no table rebuild, AUTOINCREMENT kept (0009)
    for column in ('prechat_topic', 'prechat_email', 'prechat_name'):
        op.execute(f'ALTER TABLE conversation DROP COLUMN {column}')
    op.drop_table('prechat_form')
