"""visitor page

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

The page the visitor is on now (issue 17): the widget reports the host
page's address while a chat is open, and the console's visitor panel
follows it. Scheme, host and path only (chat/metadata.py clean_url), one
value per conversation, overwritten: no history of pages is kept.
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('conversation', sa.Column('current_page', sa.Text(), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN on both (SQLite since 3.35): no copy of the
    # conversation table, which a running server's statements may hold
    op.execute('ALTER TABLE conversation DROP COLUMN current_page')
