"""agent tools

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27

Canned responses, internal notes and labels (issue 8). Internal notes are
chat_event rows of kind "note" and need no table.
"""
from alembic import op
import sqlalchemy as sa

import jutella.store.types


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('canned_response',
    sa.Column('id', BigId, nullable=False),
    sa.Column('owner_id', BigId, nullable=True),
    sa.Column('shortcut', sa.String(length=32), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', jutella.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', jutella.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['staff_account.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('owner_id', 'shortcut', 'language', name='uq_canned_owner_shortcut_lang')
    )
    with op.batch_alter_table('canned_response', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_canned_response_owner_id'), ['owner_id'], unique=False)

    op.create_table('label',
    sa.Column('id', BigId, nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('color', sa.String(length=16), nullable=False),
    sa.Column('created_at', jutella.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )

    op.create_table('conversation_label',
    sa.Column('conversation_id', BigId, nullable=False),
    sa.Column('label_id', BigId, nullable=False),
    sa.Column('added_by', BigId, nullable=True),
    sa.Column('added_at', jutella.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['label_id'], ['label.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['added_by'], ['staff_account.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('conversation_id', 'label_id')
    )
    with op.batch_alter_table('conversation_label', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conversation_label_label_id'), ['label_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('conversation_label', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversation_label_label_id'))
    op.drop_table('conversation_label')
    op.drop_table('label')
    with op.batch_alter_table('canned_response', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_canned_response_owner_id'))
    op.drop_table('canned_response')
