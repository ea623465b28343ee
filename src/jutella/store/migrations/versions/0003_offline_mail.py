"""offline messages, replies, mail outbox

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

Messages left through the widget's email form, the replies staff send, and the
durable mail outbox.
"""
from alembic import op
import sqlalchemy as sa

import jutella.store.types  # noqa: F401


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('offline_message',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('visitor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('conversation_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('assigned_agent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', jutella.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', jutella.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', jutella.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('browser', sa.String(length=64), nullable=True),
    sa.Column('browser_version', sa.String(length=16), nullable=True),
    sa.Column('os', sa.String(length=64), nullable=True),
    sa.Column('os_version', sa.String(length=32), nullable=True),
    sa.Column('referrer', sa.Text(), nullable=True),
    sa.Column('page_url', sa.Text(), nullable=True),
    sa.Column('language', sa.String(length=16), nullable=True),
    sa.ForeignKeyConstraint(['assigned_agent_id'], ['staff_account.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['visitor_id'], ['visitor.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('offline_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_offline_message_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_offline_message_email'), ['email'], unique=False)
        batch_op.create_index(batch_op.f('ix_offline_message_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_offline_message_visitor_id'), ['visitor_id'], unique=False)

    op.create_table('mail_outbox',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('message_id', sa.String(length=200), nullable=False),
    sa.Column('to_addr', sa.String(length=320), nullable=False),
    sa.Column('to_name', sa.String(length=200), nullable=True),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('body_text', sa.Text(), nullable=False),
    sa.Column('body_html', sa.Text(), nullable=True),
    sa.Column('reply_to', sa.String(length=320), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', jutella.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('claim_token', sa.String(length=32), nullable=True),
    sa.Column('claimed_at', jutella.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', jutella.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', jutella.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('offline_message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['offline_message_id'], ['offline_message.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id')
    )
    with op.batch_alter_table('mail_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mail_outbox_next_attempt_at'), ['next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_mail_outbox_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_mail_outbox_to_addr'), ['to_addr'], unique=False)

    op.create_table('offline_reply',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('offline_message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('agent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', jutella.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('outbox_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['staff_account.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['offline_message_id'], ['offline_message.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['outbox_id'], ['mail_outbox.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('offline_reply', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_offline_reply_offline_message_id'), ['offline_message_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('offline_reply', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_offline_reply_offline_message_id'))

    op.drop_table('offline_reply')
    with op.batch_alter_table('mail_outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mail_outbox_to_addr'))
        batch_op.drop_index(batch_op.f('ix_mail_outbox_state'))
        batch_op.drop_index(batch_op.f('ix_mail_outbox_next_attempt_at'))

    op.drop_table('mail_outbox')
    with op.batch_alter_table('offline_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_offline_message_visitor_id'))
        batch_op.drop_index(batch_op.f('ix_offline_message_state'))
        batch_op.drop_index(batch_op.f('ix_offline_message_email'))
        batch_op.drop_index(batch_op.f('ix_offline_message_created_at'))

    op.drop_table('offline_message')
