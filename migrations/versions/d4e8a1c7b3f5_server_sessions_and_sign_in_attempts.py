"""security: server-side sign-in sessions; sign-in attempts for a throttle shared by every process

Revision ID: d4e8a1c7b3f5
Revises: c3a9d5e1f7b2
Create Date: 2026-12-01 14:00:00

A row of user_sessions backs each sign-in (the cookie names it), so sign-out and deactivation
end a session on the server. sign_in_attempts holds recent attempts (hashed keys, never the
password) so the throttle counts across processes and machines.
"""
import sqlalchemy as sa
from alembic import op

import dashboard.models

# revision identifiers, used by Alembic.
revision = 'd4e8a1c7b3f5'
down_revision = 'c3a9d5e1f7b2'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('sign_in_attempts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('pair_key', sa.String(length=64), nullable=False),
    sa.Column('account_key', sa.String(length=64), nullable=False),
    sa.Column('created_at', dashboard.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_in_attempts'))
    )
    with op.batch_alter_table('sign_in_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_sign_in_attempts_account_created', ['account_key', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_sign_in_attempts_created_at'), ['created_at'], unique=False)
        batch_op.create_index('ix_sign_in_attempts_pair_created', ['pair_key', 'created_at'], unique=False)

    op.create_table('user_sessions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', dashboard.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', dashboard.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', dashboard.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_sessions_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_sessions'))
    )
    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_sessions_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_sessions_user_id'))
    op.drop_table('user_sessions')

    with op.batch_alter_table('sign_in_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_sign_in_attempts_pair_created')
        batch_op.drop_index(batch_op.f('ix_sign_in_attempts_created_at'))
        batch_op.drop_index('ix_sign_in_attempts_account_created')
    op.drop_table('sign_in_attempts')
