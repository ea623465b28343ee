"""PostgreSQL's full-text index without its pending list

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-08

Issue 20 item 4 (docs/performance.md, "Session 15"): the GIN index on
chat_event's body had ``fastupdate`` on, PostgreSQL's default. New entries
then go to a pending list, and whichever insert finds the list past
``gin_pending_list_limit`` (4 MB, some 40,000 messages) merges all of it into
the index before its own transaction can commit. That write batch and every
message waiting behind it stalled for about 150 ms: at 3,000 messages a
second one stall in each 72,000 messages, the largest latency of the run, and
in a 5-second step of the benchmark's ramp enough to lift p99 past 50 ms on
its own. Without the pending list each insert updates the index itself:
statement CPU measured the same (0.135-0.139 ms of PostgreSQL a delivered
message, alternately twice), the largest latency 51-64 ms instead of
147-158 ms.

SQLite is unchanged (its FTS5 index is kept in batches: 0025).
"""
from alembic import op


revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        # what the pending list holds now stays there until the next VACUUM merges it; new entries skip it
        op.execute("ALTER INDEX ix_chat_event_body_fts SET (fastupdate = off)")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("ALTER INDEX ix_chat_event_body_fts RESET (fastupdate)")
