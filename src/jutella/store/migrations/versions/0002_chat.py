"""chat: visitors, conversations, events, search

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Visitors, conversations and their numbered events, and the full-text index
over message bodies: an FTS5 table kept by triggers on SQLite, a GIN index on
to_tsvector('simple', body) on PostgreSQL (see store/search.py).
"""
from alembic import op
import sqlalchemy as sa

import jutella.store.types  # noqa: F401


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('visitor',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('public_id', sa.String(length=24), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', jutella.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', jutella.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('public_id'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_table('conversation',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('visitor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('agent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', jutella.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('accepted_at', jutella.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', jutella.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_by', sa.String(length=16), nullable=True),
    sa.Column('last_activity_at', jutella.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seq', sa.Integer(), nullable=False),
    sa.Column('agent_seen_seq', sa.Integer(), nullable=False),
    sa.Column('visitor_seen_seq', sa.Integer(), nullable=False),
    sa.Column('browser', sa.String(length=64), nullable=True),
    sa.Column('browser_version', sa.String(length=16), nullable=True),
    sa.Column('os', sa.String(length=64), nullable=True),
    sa.Column('os_version', sa.String(length=32), nullable=True),
    sa.Column('referrer', sa.Text(), nullable=True),
    sa.Column('page_url', sa.Text(), nullable=True),
    sa.Column('language', sa.String(length=16), nullable=True),
    sa.Column('metadata_erased_at', jutella.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['staff_account.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['visitor_id'], ['visitor.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conversation_agent_id'), ['agent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_conversation_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_conversation_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_conversation_visitor_id'), ['visitor_id'], unique=False)

    op.create_table('chat_event',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('conversation_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('author', sa.String(length=16), nullable=False),
    sa.Column('agent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('client_id', sa.String(length=64), nullable=True),
    sa.Column('data', sa.JSON(), nullable=True),
    sa.Column('created_at', jutella.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['staff_account.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('conversation_id', 'client_id', name='uq_chat_event_client_id'),
    sa.UniqueConstraint('conversation_id', 'seq', name='uq_chat_event_seq')
    )
    bind = op.get_bind()
    if bind.dialect.name == 'sqlite':
        # trigram tokenizer: substring search that works for Finnish compounds
        # ("opiskelijanumero" finds "numero") and for emails and numbers.
        op.execute("CREATE VIRTUAL TABLE chat_event_fts USING fts5(body, content='chat_event', "
                   "content_rowid='id', tokenize='trigram')")
        op.execute("CREATE TRIGGER chat_event_fts_ai AFTER INSERT ON chat_event WHEN new.body IS NOT NULL BEGIN "
                   "INSERT INTO chat_event_fts(rowid, body) VALUES (new.id, new.body); END")
        op.execute("CREATE TRIGGER chat_event_fts_ad AFTER DELETE ON chat_event WHEN old.body IS NOT NULL BEGIN "
                   "INSERT INTO chat_event_fts(chat_event_fts, rowid, body) VALUES ('delete', old.id, old.body); END")
        op.execute("CREATE TRIGGER chat_event_fts_au AFTER UPDATE OF body ON chat_event BEGIN "
                   "INSERT INTO chat_event_fts(chat_event_fts, rowid, body) SELECT 'delete', old.id, old.body "
                   "WHERE old.body IS NOT NULL; "
                   "INSERT INTO chat_event_fts(rowid, body) SELECT new.id, new.body WHERE new.body IS NOT NULL; END")
    else:
        op.execute("CREATE INDEX ix_chat_event_body_fts ON chat_event "
                   "USING gin (to_tsvector('simple', coalesce(body, '')))")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        op.execute("DROP TABLE IF EXISTS chat_event_fts")
    op.drop_table('chat_event')
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversation_visitor_id'))
        batch_op.drop_index(batch_op.f('ix_conversation_state'))
        batch_op.drop_index(batch_op.f('ix_conversation_created_at'))
        batch_op.drop_index(batch_op.f('ix_conversation_agent_id'))

    op.drop_table('conversation')
    op.drop_table('visitor')
