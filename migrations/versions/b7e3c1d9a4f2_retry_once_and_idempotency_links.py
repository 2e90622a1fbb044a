"""hardening: a log is retried once (unique retry_of_id); an idempotency key names what it created

Revision ID: b7e3c1d9a4f2
Revises: d4e8a1c7b3f5
Create Date: 2026-12-01 11:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b7e3c1d9a4f2'
down_revision = 'd4e8a1c7b3f5'
branch_labels = None
depends_on = None


def upgrade():
    # Plain index operations, no batch: on SQLite a batch recreates publish_logs and drops the
    # publish_day_counts triggers.
    op.drop_index('ix_publish_logs_retry_of_id', table_name='publish_logs')
    op.create_index('uq_publish_logs_retry_of_id', 'publish_logs', ['retry_of_id'], unique=True)

    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('publish_log_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('batch_id', sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_idempotency_records_publish_log_id_publish_logs'),
                                    'publish_logs', ['publish_log_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_idempotency_records_batch_id_publish_batches'),
                                    'publish_batches', ['batch_id'], ['id'])
        batch_op.create_index(batch_op.f('ix_idempotency_records_created_at'), ['created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('idempotency_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_records_created_at'))
        batch_op.drop_constraint(batch_op.f('fk_idempotency_records_batch_id_publish_batches'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_idempotency_records_publish_log_id_publish_logs'), type_='foreignkey')
        batch_op.drop_column('batch_id')
        batch_op.drop_column('publish_log_id')

    op.drop_index('uq_publish_logs_retry_of_id', table_name='publish_logs')
    op.create_index('ix_publish_logs_retry_of_id', 'publish_logs', ['retry_of_id'], unique=False)
