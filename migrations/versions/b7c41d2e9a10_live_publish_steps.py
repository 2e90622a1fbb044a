"""live publishing: step state on publish logs

Revision ID: b7c41d2e9a10
Revises: ce5acaad780d
Create Date: 2026-12-01 10:40:00

"""
from alembic import op
import sqlalchemy as sa

import dashboard.models


# revision identifiers, used by Alembic.
revision = 'b7c41d2e9a10'
down_revision = 'ce5acaad780d'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('publish_logs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('step', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('platform_state', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('trace_id', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('step_started_at', dashboard.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('restarts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('reconcile_checks', sa.Integer(), nullable=False, server_default='0'))


def downgrade():
    # Not a batch: on SQLite a batch drop copies the table, and publish_logs has a generated
    # column (counts_at) a copy cannot write. SQLite 3.35+ drops columns in place.
    for column in ('reconcile_checks', 'restarts', 'step_started_at', 'trace_id', 'platform_state',
                   'step'):
        op.drop_column('publish_logs', column)
