"""reports

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07

Reports that keep no personal data (chat/reports.py, docs/reports.md): the
daily aggregates per (day, hour, site, department), the per-agent figures,
and the conversation's ``counted`` flag that makes a close count once.
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
BUCKETS = 9  # store/models.py REPORT_BUCKETS


def _count(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=False, server_default=sa.text('0'))


def upgrade() -> None:
    op.add_column('conversation', sa.Column('counted', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table('report_daily',
    sa.Column('id', BIG, nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('hour', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=True),
    sa.Column('department_id', sa.Integer(), nullable=True),
    *[_count(n) for n in ('chats', 'missed', 'offline_messages', 'messages')],
    *[_count(f'rating_{i}') for i in range(1, 6)],
    *[_count(f'first_answer_{i}') for i in range(BUCKETS)],
    *[_count(f'duration_{i}') for i in range(BUCKETS)],
    sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('uq_report_daily_cell', 'report_daily',
                    ['day', 'hour', sa.text('coalesce(site_id, 0)'), sa.text('coalesce(department_id, 0)')],
                    unique=True)
    op.create_table('report_agent_daily',
    sa.Column('id', BIG, nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('agent_id', BIG, nullable=False),
    _count('chats_answered'),
    *[_count(f'first_answer_{i}') for i in range(BUCKETS)],
    sa.ForeignKeyConstraint(['agent_id'], ['staff_account.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('day', 'agent_id', name='uq_report_agent_day'),
    )
    op.create_index('ix_report_agent_daily_agent_id', 'report_agent_daily', ['agent_id'])


def downgrade() -> None:
    op.drop_index('ix_report_agent_daily_agent_id', table_name='report_agent_daily')
    op.drop_table('report_agent_daily')
    op.drop_index('uq_report_daily_cell', table_name='report_daily')
    op.drop_table('report_daily')
    # SQLite (3.35+) drops the column in place: no table rebuild, AUTOINCREMENT kept (0009)
    op.execute('ALTER TABLE conversation DROP COLUMN counted')
