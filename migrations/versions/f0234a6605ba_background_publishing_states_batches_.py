"""background publishing: states, batches, idempotency, account health, user time zone

Revision ID: f0234a6605ba
Revises: 040791fd7bca
Create Date: 2026-11-25 20:45:40.490154

"""
from alembic import op
import sqlalchemy as sa

import dashboard.models


# revision identifiers, used by Alembic.
revision = 'f0234a6605ba'
down_revision = '040791fd7bca'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('idempotency_records',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('endpoint', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('response_status', sa.Integer(), nullable=True),
    sa.Column('response_body', sa.JSON(), nullable=True),
    sa.Column('created_at', dashboard.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_idempotency_records_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_records'))
    )
    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.create_index('ix_idempotency_records_user_key', ['user_id', 'key'], unique=True)

    op.create_table('publish_batches',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('clip_id', sa.Uuid(), nullable=False),
    sa.Column('created_by_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', dashboard.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', dashboard.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['clip_id'], ['clips.id'], name=op.f('fk_publish_batches_clip_id_clips')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_publish_batches_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_publish_batches'))
    )
    with op.batch_alter_table('publish_batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_publish_batches_clip_id'), ['clip_id'], unique=False)

    with op.batch_alter_table('publish_logs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scheduled_at', dashboard.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('next_attempt_at', dashboard.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('started_at', dashboard.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('batch_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('retry_of_id', sa.Uuid(), nullable=True))
        batch_op.create_index('ix_publish_logs_account_published', ['social_account_id', 'published_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_publish_logs_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index('ix_publish_logs_status_next_attempt', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_publish_logs_retry_of_id'), ['retry_of_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_publish_logs_batch_id_publish_batches'), 'publish_batches', ['batch_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_publish_logs_retry_of_id_publish_logs'), 'publish_logs', ['retry_of_id'], ['id'])

    with op.batch_alter_table('social_accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('needs_credentials', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('needs_credentials_reason', sa.Text(), nullable=True))

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('timezone', sa.String(length=64), nullable=False, server_default='UTC'))



def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('timezone')

    with op.batch_alter_table('social_accounts', schema=None) as batch_op:
        batch_op.drop_column('needs_credentials_reason')
        batch_op.drop_column('needs_credentials')

    with op.batch_alter_table('publish_logs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_publish_logs_retry_of_id_publish_logs'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_publish_logs_batch_id_publish_batches'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_publish_logs_retry_of_id'))
        batch_op.drop_index('ix_publish_logs_status_next_attempt')
        batch_op.drop_index(batch_op.f('ix_publish_logs_batch_id'))
        batch_op.drop_index('ix_publish_logs_account_published')
        batch_op.drop_column('retry_of_id')
        batch_op.drop_column('batch_id')
        batch_op.drop_column('started_at')
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('attempts')
        batch_op.drop_column('scheduled_at')

    with op.batch_alter_table('publish_batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_publish_batches_clip_id'))

    op.drop_table('publish_batches')
    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.drop_index('ix_idempotency_records_user_key')

    op.drop_table('idempotency_records')
