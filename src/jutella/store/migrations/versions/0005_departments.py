"""departments

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27

Departments, agent membership, concurrent-chat limits and transfers (issue 8).
"""
from alembic import op
import sqlalchemy as sa

import jutella.store.types  # noqa: F401


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


BIGID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('department',
    sa.Column('id', BIGID, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('notify_email', sa.String(length=320), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('created_at', jutella.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('staff_department',
    sa.Column('account_id', BIGID, nullable=False),
    sa.Column('department_id', BIGID, nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['staff_account.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['department_id'], ['department.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('account_id', 'department_id')
    )
    with op.batch_alter_table('staff_department', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_department_department_id'), ['department_id'], unique=False)

    with op.batch_alter_table('staff_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_chats', sa.Integer(), nullable=True))

    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('department_id', BIGID, nullable=True))
        batch_op.create_foreign_key('fk_conversation_department_id', 'department', ['department_id'], ['id'],
                                    ondelete='SET NULL')
        batch_op.create_index(batch_op.f('ix_conversation_department_id'), ['department_id'], unique=False)

    with op.batch_alter_table('offline_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('department_id', BIGID, nullable=True))
        batch_op.create_foreign_key('fk_offline_message_department_id', 'department', ['department_id'], ['id'],
                                    ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('offline_message', schema=None) as batch_op:
        batch_op.drop_constraint('fk_offline_message_department_id', type_='foreignkey')
        batch_op.drop_column('department_id')

    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversation_department_id'))
        batch_op.drop_constraint('fk_conversation_department_id', type_='foreignkey')
        batch_op.drop_column('department_id')

    with op.batch_alter_table('staff_account', schema=None) as batch_op:
        batch_op.drop_column('max_chats')

    with op.batch_alter_table('staff_department', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_department_department_id'))

    op.drop_table('staff_department')
    op.drop_table('department')
