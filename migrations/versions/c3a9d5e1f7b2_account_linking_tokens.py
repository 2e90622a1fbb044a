"""account linking: who was connected, token expiry and scopes, refresh lease, needs reconnect

Revision ID: c3a9d5e1f7b2
Revises: b7c41d2e9a10
Create Date: 2026-12-01 11:10:00

"""
from alembic import op
import sqlalchemy as sa

import dashboard.models


# revision identifiers, used by Alembic.
revision = 'c3a9d5e1f7b2'
down_revision = 'b7c41d2e9a10'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('social_accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('external_id', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('connected_as', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('avatar_url', sa.String(length=2000), nullable=True))
        for name in ('linked_at', 'token_expires_at', 'refresh_expires_at', 'token_refreshed_at',
                     'token_refresh_lease_until'):
            batch_op.add_column(sa.Column(name, dashboard.models.UTCDateTime(timezone=True),
                                          nullable=True))
        batch_op.add_column(sa.Column('granted_scopes', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('needs_reconnect', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
        batch_op.add_column(sa.Column('needs_reconnect_reason', sa.Text(), nullable=True))
        batch_op.create_index('ix_social_accounts_platform_external_id',
                              ['platform', 'external_id'], unique=True)
        batch_op.create_index('ix_social_accounts_token_expires_at', ['token_expires_at'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('social_accounts', schema=None) as batch_op:
        batch_op.drop_index('ix_social_accounts_token_expires_at')
        batch_op.drop_index('ix_social_accounts_platform_external_id')
        for name in ('needs_reconnect_reason', 'needs_reconnect', 'granted_scopes',
                     'token_refresh_lease_until', 'token_refreshed_at', 'refresh_expires_at',
                     'token_expires_at', 'linked_at', 'avatar_url', 'connected_as', 'external_id'):
            batch_op.drop_column(name)
