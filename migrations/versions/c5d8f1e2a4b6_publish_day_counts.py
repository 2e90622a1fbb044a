"""publish_day_counts: finished attempts per UTC day, platform and outcome, kept by triggers

Revision ID: c5d8f1e2a4b6
Revises: b7c4e2a9d1f3
Create Date: 2026-12-01 11:25:00

The home page's 7-day chart sums these rows instead of counting a week of logs. The triggers
(dashboard.models.PUBLISH_DAY_COUNT_TRIGGERS) keep them in step with publish_logs; the existing
logs are counted once here.
"""
from alembic import op
import sqlalchemy as sa

from dashboard.models import PUBLISH_DAY_COUNT_TRIGGERS


# revision identifiers, used by Alembic.
revision = 'c5d8f1e2a4b6'
down_revision = 'b7c4e2a9d1f3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('publish_day_counts',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('platform', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('logs', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'platform', 'status', name=op.f('pk_publish_day_counts'))
    )
    dialect = op.get_bind().dialect.name
    day = "date(requested_at)" if dialect == "sqlite" else "(requested_at AT TIME ZONE 'UTC')::date"
    op.execute(
        f"INSERT INTO publish_day_counts (day, platform, status, logs) "
        f"SELECT {day}, platform, status, count(*) FROM publish_logs "
        f"WHERE status IN ('success', 'failed') GROUP BY {day}, platform, status"
    )
    for statement in PUBLISH_DAY_COUNT_TRIGGERS[dialect]:
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS publish_day_counts_{name}")
    else:
        op.execute("DROP TRIGGER IF EXISTS publish_day_counts_keep ON publish_logs")
        op.execute("DROP FUNCTION IF EXISTS publish_day_counts_keep()")
    op.drop_table('publish_day_counts')
