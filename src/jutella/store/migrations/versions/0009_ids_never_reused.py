"""ids never reused

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

SQLite gives a new row the largest id in the table plus one, so after an
erasure removed the newest conversation (visitor, offline message, ...) the
next one got its id back, and the audit rows kept about the erased person
then named someone else (issue 16). ``AUTOINCREMENT`` makes SQLite never hand
out an id again (it remembers the largest ever given in ``sqlite_sequence``).
SQLite cannot add it to an existing table, so each table is rebuilt (Alembic's
batch mode: a new table, the rows copied with their ids, the old one dropped,
the new one renamed); indexes and constraints come along, the FTS5 triggers
on ``chat_event`` are made again. Ids freed by erasures *before* this
migration cannot be known and may still be given once more.

This needs ``PRAGMA foreign_keys=OFF`` (dropping a referenced table with
foreign keys on would run its ON DELETE CASCADE): ``Database.migrate`` turns
it off around the migrations and checks every foreign key before committing.

PostgreSQL's sequences (``BIGSERIAL``) never give an id twice: nothing to do.
The downgrade leaves AUTOINCREMENT in place (0008's code is unaffected by it).
"""
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# every table with an integer id that audit rows name or staff see
TABLES = ('staff_account', 'recovery_code', 'audit_log', 'visitor', 'conversation', 'chat_event', 'offline_message',
          'offline_reply', 'mail_outbox', 'subject_flag', 'subject_request', 'department', 'canned_response', 'label',
          'attachment', 'transcript_request')

FTS_TRIGGERS = (
    "CREATE TRIGGER chat_event_fts_ai AFTER INSERT ON chat_event WHEN new.body IS NOT NULL BEGIN "
    "INSERT INTO chat_event_fts(rowid, body) VALUES (new.id, new.body); END",
    "CREATE TRIGGER chat_event_fts_ad AFTER DELETE ON chat_event WHEN old.body IS NOT NULL BEGIN "
    "INSERT INTO chat_event_fts(chat_event_fts, rowid, body) VALUES ('delete', old.id, old.body); END",
    "CREATE TRIGGER chat_event_fts_au AFTER UPDATE OF body ON chat_event BEGIN "
    "INSERT INTO chat_event_fts(chat_event_fts, rowid, body) SELECT 'delete', old.id, old.body "
    "WHERE old.body IS NOT NULL; "
    "INSERT INTO chat_event_fts(rowid, body) SELECT new.id, new.body WHERE new.body IS NOT NULL; END",
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        return
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("migration 0009 rebuilds tables: run it with PRAGMA foreign_keys=OFF "
                           "(jutella's own start-up does)")
    for table in TABLES:
        sql = bind.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                                   (table,)).scalar()
        if sql is None or 'AUTOINCREMENT' in sql.upper():
            continue
        with op.batch_alter_table(table, recreate='always', table_kwargs={'sqlite_autoincrement': True}):
            pass
    if not bind.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE type = 'trigger' "
                                "AND name = 'chat_event_fts_ai'").first():
        for trigger in FTS_TRIGGERS:
            op.execute(trigger)
    broken = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"migration 0009: foreign keys broken after the rebuild: {broken[:5]}")


def downgrade() -> None:
    pass  # AUTOINCREMENT stays: ids keep never being reused
