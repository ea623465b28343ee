"""api tokens

Revision ID: 0019
Revises: 0016
Create Date: 2026-12-07

API tokens (accounts/apitokens.py, docs/api.md): a name, the SHA-256 of the
token (never the token), its scopes, who made it and when, its expiry,
revocation and last use.
"""
from alembic import op
import sqlalchemy as sa

import jutella.store.types  # noqa: F401


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
WHEN = jutella.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('api_token',
    sa.Column('id', BIG, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('created_by', BIG, nullable=True),
    sa.Column('created_at', WHEN, nullable=False),
    sa.Column('expires_at', WHEN, nullable=True),
    sa.Column('revoked_at', WHEN, nullable=True),
    sa.Column('last_used_at', WHEN, nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['staff_account.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash'),
    sqlite_autoincrement=True,
    )
    op.create_index('ix_api_token_created_by', 'api_token', ['created_by'])


def downgrade() -> None:
    op.drop_index('ix_api_token_created_by', table_name='api_token')
    op.drop_table('api_token')
