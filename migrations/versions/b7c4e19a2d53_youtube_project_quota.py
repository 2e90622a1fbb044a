"""YouTube's upload quota per Google Cloud project: the project and when an attempt counted

Revision ID: b7c4e19a2d53
Revises: f0234a6605ba
Create Date: 2026-12-01 11:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import dashboard.models


# revision identifiers, used by Alembic.
revision = 'b7c4e19a2d53'
down_revision = 'f0234a6605ba'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('publish_logs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('quota_project', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('quota_counted_at', dashboard.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_publish_logs_quota_project_counted', ['quota_project', 'quota_counted_at'], unique=False)


def downgrade():
    with op.batch_alter_table('publish_logs', schema=None) as batch_op:
        batch_op.drop_index('ix_publish_logs_quota_project_counted')
        batch_op.drop_column('quota_counted_at')
        batch_op.drop_column('quota_project')
