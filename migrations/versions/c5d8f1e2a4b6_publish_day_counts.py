"""publish_day_counts: finished attempts per UTC day, platform and outcome, kept by triggers

Revision ID: c5d8f1e2a4b6
Revises: b7c4e2a9d1f3
Create Date: 2026-12-01 11:25:00

The home page's 7-day chart sums these rows instead of counting a week of logs. The triggers
(TRIGGERS below, as they were at this revision) keep them in step with publish_logs; the
existing logs are counted once here.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'c5d8f1e2a4b6'
down_revision = 'b7c4e2a9d1f3'
branch_labels = None
depends_on = None

_DAY = "', '".join(("success", "failed"))
# The triggers as this revision made them (one statement per trigger on SQLite; the function and
# its trigger on PostgreSQL): 53a1c2e7f9d0 splits the counts in shards and replaces them, and its
# downgrade puts these back.
TRIGGERS = {
    "sqlite": [
        f"""CREATE TRIGGER IF NOT EXISTS publish_day_counts_insert AFTER INSERT ON publish_logs
        WHEN NEW.status IN ('{_DAY}')
        BEGIN
          INSERT INTO publish_day_counts (day, platform, status, logs)
          VALUES (date(NEW.requested_at), NEW.platform, NEW.status, 1)
          ON CONFLICT (day, platform, status) DO UPDATE SET logs = logs + 1;
        END""",
        f"""CREATE TRIGGER IF NOT EXISTS publish_day_counts_update AFTER UPDATE OF status ON publish_logs
        WHEN OLD.status IN ('{_DAY}') OR NEW.status IN ('{_DAY}')
        BEGIN
          UPDATE publish_day_counts SET logs = logs - 1
          WHERE OLD.status IN ('{_DAY}') AND day = date(OLD.requested_at)
            AND platform = OLD.platform AND status = OLD.status;
          INSERT INTO publish_day_counts (day, platform, status, logs)
          SELECT date(NEW.requested_at), NEW.platform, NEW.status, 1 WHERE NEW.status IN ('{_DAY}')
          ON CONFLICT (day, platform, status) DO UPDATE SET logs = logs + 1;
        END""",
        f"""CREATE TRIGGER IF NOT EXISTS publish_day_counts_delete AFTER DELETE ON publish_logs
        WHEN OLD.status IN ('{_DAY}')
        BEGIN
          UPDATE publish_day_counts SET logs = logs - 1
          WHERE day = date(OLD.requested_at) AND platform = OLD.platform AND status = OLD.status;
        END""",
    ],
    "postgresql": [
        f"""CREATE OR REPLACE FUNCTION publish_day_counts_keep() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status IN ('{_DAY}') THEN
            UPDATE publish_day_counts SET logs = logs - 1
            WHERE day = (OLD.requested_at AT TIME ZONE 'UTC')::date AND platform = OLD.platform
              AND status = OLD.status;
          END IF;
          IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.status IN ('{_DAY}') THEN
            INSERT INTO publish_day_counts (day, platform, status, logs)
            VALUES ((NEW.requested_at AT TIME ZONE 'UTC')::date, NEW.platform, NEW.status, 1)
            ON CONFLICT (day, platform, status) DO UPDATE SET logs = publish_day_counts.logs + 1;
          END IF;
          RETURN NULL;
        END $$""",
        "DROP TRIGGER IF EXISTS publish_day_counts_keep ON publish_logs",
        """CREATE TRIGGER publish_day_counts_keep AFTER INSERT OR DELETE OR UPDATE OF status
        ON publish_logs FOR EACH ROW EXECUTE FUNCTION publish_day_counts_keep()""",
    ],
}


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
    for statement in TRIGGERS[dialect]:
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS publish_day_counts_{name}")
    else:
        op.execute("DROP TRIGGER IF EXISTS publish_day_counts_keep ON publish_logs")
        op.execute("DROP FUNCTION IF EXISTS publish_day_counts_keep()")
    op.drop_table('publish_day_counts')
