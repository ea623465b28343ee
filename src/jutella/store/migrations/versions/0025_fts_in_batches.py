"""SQLite's full-text index kept in batches behind a watermark

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07

Issue 20 item 4 (docs/performance.md, "The full-text index in batches"):
the AFTER INSERT trigger wrote every commit's few messages into a new FTS5
segment of their own, which FTS5 then merged: 50-100 us of a message's CPU.
Now the index is brought up to date in batches (store/search.py
``index_tail``: by the writer thread every few hundred messages, in the same
transaction as a batch of them, and by every housekeeping round), and one row
says how far it reaches: every chat_event with ``id <= indexed_upto`` is in
the index, none above it is. Search reads the index for the part below the
mark and the few rows above it directly, so a message is found the moment
it is acknowledged.

The delete and update triggers tell FTS5 to forget only what it holds
(``id <= indexed_upto``): a 'delete' of a row an external-content index
never held corrupts it. Erasure and retention delete events as before, and
the triggers remove the indexed ones' terms.

PostgreSQL is unchanged (its GIN index is part of each transaction).
Downgrade indexes what is above the mark and brings the three triggers of
0002 back.
"""
from alembic import op


revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

OLD_TRIGGERS = (
    "CREATE TRIGGER chat_event_fts_ai AFTER INSERT ON chat_event WHEN new.body IS NOT NULL BEGIN "
    "INSERT INTO chat_event_fts(rowid, body) VALUES (new.id, new.body); END",
    "CREATE TRIGGER chat_event_fts_ad AFTER DELETE ON chat_event WHEN old.body IS NOT NULL BEGIN "
    "INSERT INTO chat_event_fts(chat_event_fts, rowid, body) VALUES ('delete', old.id, old.body); END",
    "CREATE TRIGGER chat_event_fts_au AFTER UPDATE OF body ON chat_event BEGIN "
    "INSERT INTO chat_event_fts(chat_event_fts, rowid, body) SELECT 'delete', old.id, old.body "
    "WHERE old.body IS NOT NULL; "
    "INSERT INTO chat_event_fts(rowid, body) SELECT new.id, new.body WHERE new.body IS NOT NULL; END",
)

NEW_TRIGGERS = (
    # only what the index holds is deleted from it
    "CREATE TRIGGER chat_event_fts_ad AFTER DELETE ON chat_event "
    "WHEN old.body IS NOT NULL AND old.id <= (SELECT indexed_upto FROM chat_event_fts_mark WHERE id = 1) BEGIN "
    "INSERT INTO chat_event_fts(chat_event_fts, rowid, body) VALUES ('delete', old.id, old.body); END",
    # an indexed row whose body changes: its old terms out, its new ones in (a row above the
    # mark is indexed with its body as it is then, by index_tail)
    "CREATE TRIGGER chat_event_fts_au AFTER UPDATE OF body ON chat_event "
    "WHEN old.id <= (SELECT indexed_upto FROM chat_event_fts_mark WHERE id = 1) BEGIN "
    "INSERT INTO chat_event_fts(chat_event_fts, rowid, body) SELECT 'delete', old.id, old.body "
    "WHERE old.body IS NOT NULL; "
    "INSERT INTO chat_event_fts(rowid, body) SELECT new.id, new.body WHERE new.body IS NOT NULL; END",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != 'sqlite':
        return
    op.execute("CREATE TABLE chat_event_fts_mark (id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1), "
               "indexed_upto INTEGER NOT NULL)")
    # the insert trigger indexed every row there is; ids are never reused (0009), so every
    # later row's id is above the highest ever given
    op.execute("INSERT INTO chat_event_fts_mark (id, indexed_upto) VALUES (1, max("
               "coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'chat_event'), 0), "
               "coalesce((SELECT max(id) FROM chat_event), 0)))")
    for name in ("chat_event_fts_ai", "chat_event_fts_ad", "chat_event_fts_au"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    for trigger in NEW_TRIGGERS:
        op.execute(trigger)


def downgrade() -> None:
    if op.get_bind().dialect.name != 'sqlite':
        return
    op.execute("INSERT INTO chat_event_fts(rowid, body) SELECT id, body FROM chat_event "
               "WHERE id > (SELECT indexed_upto FROM chat_event_fts_mark WHERE id = 1) AND body IS NOT NULL")
    for name in ("chat_event_fts_ad", "chat_event_fts_au"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP TABLE chat_event_fts_mark")
    for trigger in OLD_TRIGGERS:
        op.execute(trigger)
