"""webhooks

Revision ID: 0020
Revises: 0016
Create Date: 2026-12-07

Signed webhooks (mail/webhooks.py, docs/webhooks.md): the hooks admins add,
and the durable queue of deliveries, each row written in the transaction of
the change it tells of.
"""
from alembic import op
import sqlalchemy as sa

import jutella.store.types

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
WHEN = jutella.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('webhook',
    sa.Column('id', BIG, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('secret', sa.String(length=100), nullable=False),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.Column('personal', sa.JSON(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', WHEN, nullable=False),
    sa.Column('updated_at', WHEN, nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True,
    )
    op.create_table('webhook_delivery',
    sa.Column('id', BIG, nullable=False),
    sa.Column('delivery_id', sa.String(length=36), nullable=False),
    sa.Column('hook_id', BIG, nullable=False),
    sa.Column('event', sa.String(length=40), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', WHEN, nullable=False),
    sa.Column('expires_at', WHEN, nullable=False),
    sa.Column('claim_token', sa.String(length=32), nullable=True),
    sa.Column('claimed_at', WHEN, nullable=True),
    sa.Column('last_status', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.String(length=300), nullable=True),
    sa.Column('created_at', WHEN, nullable=False),
    sa.Column('delivered_at', WHEN, nullable=True),
    sa.Column('conversation_id', BIG, nullable=True),
    sa.Column('offline_message_id', BIG, nullable=True),
    sa.ForeignKeyConstraint(['hook_id'], ['webhook.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['offline_message_id'], ['offline_message.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('delivery_id'),
    sqlite_autoincrement=True,
    )
    for column in ('hook_id', 'state', 'next_attempt_at', 'conversation_id', 'offline_message_id'):
        op.create_index(f'ix_webhook_delivery_{column}', 'webhook_delivery', [column])


def downgrade() -> None:
    op.drop_table('webhook_delivery')
    op.drop_table('webhook')
