"""attachments ratings

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27

Attachments, transcripts and ratings (issue 8): the attachment and
transcript_request tables, and the visitor's rating on the conversation.
"""
from alembic import op
import sqlalchemy as sa

import jutella.store.types  # noqa: F401


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
WHEN = jutella.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rating', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('rating_comment', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('rated_at', WHEN, nullable=True))

    op.create_table('attachment',
    sa.Column('id', BIG, nullable=False),
    sa.Column('public_id', sa.String(length=64), nullable=False),
    sa.Column('conversation_id', BIG, nullable=False),
    sa.Column('seq', sa.Integer(), nullable=True),
    sa.Column('uploader', sa.String(length=16), nullable=False),
    sa.Column('agent_id', BIG, nullable=True),
    sa.Column('content_type', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('storage_name', sa.String(length=64), nullable=False),
    sa.Column('created_at', WHEN, nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['agent_id'], ['staff_account.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('public_id'),
    sa.UniqueConstraint('storage_name')
    )
    with op.batch_alter_table('attachment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attachment_conversation_id'), ['conversation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_attachment_created_at'), ['created_at'], unique=False)

    op.create_table('transcript_request',
    sa.Column('id', BIG, nullable=False),
    sa.Column('conversation_id', BIG, nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('requested_by', sa.String(length=16), nullable=False),
    sa.Column('agent_id', BIG, nullable=True),
    sa.Column('outbox_id', BIG, nullable=True),
    sa.Column('created_at', WHEN, nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['agent_id'], ['staff_account.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['outbox_id'], ['mail_outbox.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('transcript_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transcript_request_conversation_id'), ['conversation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_transcript_request_email'), ['email'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('transcript_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transcript_request_email'))
        batch_op.drop_index(batch_op.f('ix_transcript_request_conversation_id'))
    op.drop_table('transcript_request')
    with op.batch_alter_table('attachment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attachment_created_at'))
        batch_op.drop_index(batch_op.f('ix_attachment_conversation_id'))
    op.drop_table('attachment')
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.drop_column('rated_at')
        batch_op.drop_column('rating_comment')
        batch_op.drop_column('rating')
