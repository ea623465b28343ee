"""agent tools

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27

Canned responses, internal notes and labels (issue 8).
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

import jutella.store.types  # noqa: F401


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
