"""register flags and requests

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

Objection and restriction flags, and the log of data-subject requests.
"""
from alembic import op
import sqlalchemy as sa

import jutella.store.types  # noqa: F401


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('subject_request',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('received_at', jutella.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deadline', jutella.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('verified_how', sa.String(length=500), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('handled_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('closed_at', jutella.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', jutella.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['handled_by'], ['staff_account.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('subject_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subject_request_deadline'), ['deadline'], unique=False)
        batch_op.create_index(batch_op.f('ix_subject_request_status'), ['status'], unique=False)

    op.create_table('subject_flag',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('email_hash', sa.String(length=64), nullable=True),
    sa.Column('visitor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('offline_message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', jutella.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('request_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['staff_account.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['request_id'], ['subject_request.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['visitor_id'], ['visitor.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['offline_message_id'], ['offline_message.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('subject_flag', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subject_flag_offline_message_id'), ['offline_message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_subject_flag_email_hash'), ['email_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_subject_flag_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_subject_flag_visitor_id'), ['visitor_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('subject_flag', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subject_flag_offline_message_id'))
        batch_op.drop_index(batch_op.f('ix_subject_flag_visitor_id'))
        batch_op.drop_index(batch_op.f('ix_subject_flag_kind'))
        batch_op.drop_index(batch_op.f('ix_subject_flag_email_hash'))

    op.drop_table('subject_flag')
    with op.batch_alter_table('subject_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subject_request_status'))
        batch_op.drop_index(batch_op.f('ix_subject_request_deadline'))

    op.drop_table('subject_request')
