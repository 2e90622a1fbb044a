"""publish_logs.counts_at: the quota's time of each log, computed and indexed with the account

Revision ID: b7c4e2a9d1f3
Revises: b7c4e19a2d53
Create Date: 2026-12-01 10:50:00

A stored generated column, so the database fills it for the existing rows (the backfill) and
keeps it right on every later insert and update. SQLite cannot ALTER TABLE ADD a stored
generated column, so there the table is recreated (batch mode, rows copied).
"""
from alembic import op
import sqlalchemy as sa

import dashboard.models


# revision identifiers, used by Alembic.
revision = 'b7c4e2a9d1f3'
down_revision = 'b7c4e19a2d53'
branch_labels = None
depends_on = None

COUNTS_AT = ("CASE WHEN status IN ('success', 'publishing', 'pending', 'unconfirmed') "
             "THEN coalesce(published_at, started_at) END")


def upgrade():
    recreate = "always" if op.get_bind().dialect.name == "sqlite" else "auto"
    with op.batch_alter_table('publish_logs', schema=None, recreate=recreate) as batch_op:
        batch_op.add_column(sa.Column('counts_at', dashboard.models.UTCDateTime(timezone=True),
                                      sa.Computed(COUNTS_AT, persisted=True), nullable=True))
        batch_op.create_index('ix_publish_logs_account_counts_at', ['social_account_id', 'counts_at'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('publish_logs', schema=None) as batch_op:
        batch_op.drop_index('ix_publish_logs_account_counts_at')
        batch_op.drop_column('counts_at')
