"""strip stored urls

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

From now on the server keeps page addresses and referrers as scheme, host
and path only (chat/metadata.py ``clean_url``, issue 16). Rows stored before
may hold a query string, a fragment or a user name and password (an email, a
session id): they are cleaned here by the same rule, frozen below (a
migration must not change when the code does). An address that the rule
would not keep at all is set to NULL.
"""
from urllib.parse import urlsplit, urlunsplit

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

MAX_URL = 2000
DEFAULT_PORTS = {"http": 80, "https": 443}


def clean_url(value):
    if not isinstance(value, str) or not value:
        return None
    try:
        parts = urlsplit(value.strip())
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
    except ValueError:
        return None
    if scheme not in ("http", "https") or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path, "", ""))[:MAX_URL]


def upgrade() -> None:
    bind = op.get_bind()
    for name in ('conversation', 'offline_message'):
        table = sa.table(name, sa.column('id', sa.Integer), sa.column('page_url', sa.Text),
                         sa.column('referrer', sa.Text))
        rows = bind.execute(sa.select(table.c.id, table.c.page_url, table.c.referrer).where(
            sa.or_(table.c.page_url.isnot(None), table.c.referrer.isnot(None)))).all()
        changed = [{'row_id': row_id, 'page': clean_url(page), 'ref': clean_url(referrer)}
                   for row_id, page, referrer in rows
                   if (clean_url(page), clean_url(referrer)) != (page, referrer)]
        if changed:  # one executemany
            bind.execute(sa.update(table).where(table.c.id == sa.bindparam('row_id'))
                         .values(page_url=sa.bindparam('page'), referrer=sa.bindparam('ref')), changed)


def downgrade() -> None:
    pass  # what was removed is not kept anywhere
