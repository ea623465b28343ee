"""marketing consent

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-06

Marketing contacts only with consent (issue 16 item 4): an offline message
records whether its sender ticked the form's consent box, as the version of
the consent wording shown and the time it was given. Messages stored before
have no consent, so the contacts export no longer lists them.

(Written on a branch beside 0009 and 0010; ``down_revision`` is re-chained to
the latest of them when the branches are merged.)
"""
from alembic import op
import sqlalchemy as sa

import jutella.store.types  # noqa: F401


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

WHEN = jutella.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('offline_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('marketing_consent_version', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('marketing_consent_at', WHEN, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('offline_message', schema=None) as batch_op:
        batch_op.drop_column('marketing_consent_at')
        batch_op.drop_column('marketing_consent_version')
