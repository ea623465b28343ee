"""reply tokens

Revision ID: 0021
Revises: 0016
Create Date: 2026-12-07

Email replies back into the thread (issue 19, chat/email_replies.py,
docs/mail.md "Replies by email"): the per-mail reply addresses (hashed), the
replies received over LMTP and their attachments.
"""
from alembic import op
import sqlalchemy as sa

import jutella.store.types  # noqa: F401


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
WHEN = jutella.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('reply_token',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('offline_message_id', BIG, nullable=True),
    sa.Column('conversation_id', BIG, nullable=True),
    sa.Column('outbox_id', BIG, nullable=True),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('created_at', WHEN, nullable=False),
    sa.Column('expires_at', WHEN, nullable=False),
    sa.ForeignKeyConstraint(['offline_message_id'], ['offline_message.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['outbox_id'], ['mail_outbox.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_reply_token_offline_message_id', 'reply_token', ['offline_message_id'])
    op.create_index('ix_reply_token_conversation_id', 'reply_token', ['conversation_id'])
    op.create_index('ix_reply_token_expires_at', 'reply_token', ['expires_at'])
    op.create_table('email_reply',
    sa.Column('id', BIG, nullable=False),
    sa.Column('offline_message_id', BIG, nullable=False),
    sa.Column('from_addr', sa.String(length=320), nullable=False),
    sa.Column('from_name', sa.String(length=200), nullable=True),
    sa.Column('sender_differs', sa.Boolean(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('refused', sa.JSON(), nullable=False),
    sa.Column('message_id', sa.String(length=200), nullable=True),
    sa.Column('created_at', WHEN, nullable=False),
    sa.ForeignKeyConstraint(['offline_message_id'], ['offline_message.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('offline_message_id', 'message_id', name='uq_email_reply_message_id'),
    sqlite_autoincrement=True,
    )
    op.create_index('ix_email_reply_offline_message_id', 'email_reply', ['offline_message_id'])
    op.create_index('ix_email_reply_from_addr', 'email_reply', ['from_addr'])
    op.create_table('email_reply_file',
    sa.Column('id', BIG, nullable=False),
    sa.Column('public_id', sa.String(length=64), nullable=False),
    sa.Column('email_reply_id', BIG, nullable=False),
    sa.Column('offline_message_id', BIG, nullable=False),
    sa.Column('content_type', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('storage_name', sa.String(length=64), nullable=False),
    sa.Column('created_at', WHEN, nullable=False),
    sa.ForeignKeyConstraint(['email_reply_id'], ['email_reply.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['offline_message_id'], ['offline_message.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('public_id'),
    sa.UniqueConstraint('storage_name'),
    sqlite_autoincrement=True,
    )
    op.create_index('ix_email_reply_file_email_reply_id', 'email_reply_file', ['email_reply_id'])
    op.create_index('ix_email_reply_file_offline_message_id', 'email_reply_file', ['offline_message_id'])


def downgrade() -> None:
    op.drop_table('email_reply_file')
    op.drop_table('email_reply')
    op.drop_table('reply_token')
