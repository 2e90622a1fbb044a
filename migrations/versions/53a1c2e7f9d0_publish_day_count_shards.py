"""publish_day_counts in shards: a day's count of one platform and outcome in up to 16 rows

Revision ID: 53a1c2e7f9d0
Revises: f6a8b0c2d4e6
Create Date: 2026-12-03 14:40:00

On PostgreSQL every outcome of one platform on one day updated the same row, whose lock it held
to its COMMIT: under 64 clients the outcomes queued behind it (dashboard.models,
PUBLISH_DAY_COUNT_SHARDS). A `shard` column joins the primary key; the counts so far become
shard 0, and the triggers (dashboard.models.PUBLISH_DAY_COUNT_TRIGGERS) write each connection's
changes in its own shard. The downgrade adds the shards up again.
"""
import sqlalchemy as sa
from alembic import context, op

from dashboard.models import PUBLISH_DAY_COUNT_TRIGGERS

# revision identifiers, used by Alembic.
revision = '53a1c2e7f9d0'
down_revision = 'f6a8b0c2d4e6'
branch_labels = None
depends_on = None

_SQLITE_TRIGGERS = ("insert", "update", "delete")


def upgrade():
    _rebuild(sharded=True, triggers=PUBLISH_DAY_COUNT_TRIGGERS)


def downgrade():
    # The triggers as they were before: those of the revision that made them.
    _rebuild(sharded=False, triggers=context.script.get_revision('c5d8f1e2a4b6').module.TRIGGERS)


def _rebuild(*, sharded: bool, triggers: dict[str, list[str]]):
    """publish_day_counts made again with or without `shard`, each count's shards added up,
    and kept from then on by `triggers` (statements per dialect)."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":  # its triggers name the table they write; PostgreSQL's function looks it up
        for name in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS publish_day_counts_{name}")
    else:  # no log changes status until the new table and its triggers are in place
        op.execute("LOCK TABLE publish_logs IN SHARE ROW EXCLUSIVE MODE")
    op.rename_table('publish_day_counts', 'publish_day_counts_old')
    if dialect != "sqlite":  # a primary key's name is its index's, one per schema
        op.execute("ALTER TABLE publish_day_counts_old RENAME CONSTRAINT pk_publish_day_counts "
                   "TO pk_publish_day_counts_old")
    key = ['day', 'platform', 'status'] + (['shard'] if sharded else [])
    op.create_table('publish_day_counts',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('platform', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    *([sa.Column('shard', sa.SmallInteger(), server_default=sa.text('0'), nullable=False)] if sharded else []),
    sa.Column('logs', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint(*key, name=op.f('pk_publish_day_counts'))
    )
    op.execute("INSERT INTO publish_day_counts (day, platform, status, logs) "
               "SELECT day, platform, status, sum(logs) FROM publish_day_counts_old "
               "GROUP BY day, platform, status")
    op.drop_table('publish_day_counts_old')
    for statement in triggers[dialect]:
        op.execute(statement)
