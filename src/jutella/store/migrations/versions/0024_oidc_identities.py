"""single sign-on with OpenID Connect

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-08

Issue 19 item 4 (accounts/oidc.py, docs/sso.md): a staff account's identity
at the provider (issuer and subject), the sign-ins under way (the hashed
state and browser cookie, the nonce and the PKCE verifier, ten minutes at
most) and a session's flag that its roles still need a second factor.
"""
from alembic import op
import sqlalchemy as sa

import jutella.store.types  # noqa: F401


revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
WHEN = jutella.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('oidc_identity',
    sa.Column('id', BIG, nullable=False),
    sa.Column('issuer', sa.String(length=500), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('account_id', BIG, nullable=False),
    sa.Column('created_at', WHEN, nullable=False),
    sa.Column('last_sign_in_at', WHEN, nullable=True),
    sa.Column('disabled_by_sso', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['staff_account.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('issuer', 'subject', name='uq_oidc_identity_issuer_subject'),
    sqlite_autoincrement=True,
    )
    op.create_index('ix_oidc_identity_account_id', 'oidc_identity', ['account_id'])
    op.create_table('oidc_login',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('browser_hash', sa.String(length=64), nullable=False),
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('code_verifier', sa.String(length=128), nullable=False),
    sa.Column('stage', sa.String(length=8), nullable=False),
    sa.Column('account_id', BIG, nullable=True),
    sa.Column('created_at', WHEN, nullable=False),
    sa.Column('expires_at', WHEN, nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['staff_account.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_oidc_login_browser_hash', 'oidc_login', ['browser_hash'])
    op.create_index('ix_oidc_login_expires_at', 'oidc_login', ['expires_at'])
    op.add_column('staff_session', sa.Column('needs_totp', sa.Boolean(), nullable=False,
                                             server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('staff_session') as batch_op:
        batch_op.drop_column('needs_totp')
    op.drop_index('ix_oidc_login_expires_at', table_name='oidc_login')
    op.drop_index('ix_oidc_login_browser_hash', table_name='oidc_login')
    op.drop_table('oidc_login')
    op.drop_index('ix_oidc_identity_account_id', table_name='oidc_identity')
    op.drop_table('oidc_identity')
