"""hide the launcher when closed

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07

Issue 18 item 1: a site's profile may say that outside the opening hours the
launcher is hidden instead of showing the offline form (``site_profile.
when_closed``: NULL follows the default profile, ``form`` or ``hide``;
docs/sites.md). A plain ADD COLUMN on both databases (no table rebuild).
"""
from alembic import op


revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE site_profile ADD COLUMN when_closed VARCHAR(8)")


def downgrade() -> None:
    op.execute("ALTER TABLE site_profile DROP COLUMN when_closed")
