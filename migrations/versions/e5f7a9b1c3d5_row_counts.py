"""row_counts: the number of clips, kept by triggers

Revision ID: e5f7a9b1c3d5
Revises: d4e6f8a0b2c1
Create Date: 2026-12-02 01:30:00

The home page shows how many clips there are; counting them read every clip (8.6 ms on
PostgreSQL at 100,000 clips). The triggers (dashboard.models.ROW_COUNT_TRIGGERS) keep one row in
step with clips (on PostgreSQL at each COMMIT); the existing clips are counted once here, after
the triggers exist (on PostgreSQL creating them waits for the transactions writing clips and
locks out new ones until this transaction ends, so none is missed or counted twice).
"""
import sqlalchemy as sa
from alembic import op

from dashboard.models import ROW_COUNT_TRIGGERS

# revision identifiers, used by Alembic.
revision = 'e5f7a9b1c3d5'
down_revision = 'd4e6f8a0b2c1'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('row_counts',
    sa.Column('table_name', sa.String(length=50), nullable=False),
    sa.Column('row_count', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('table_name', name=op.f('pk_row_counts'))
    )
    for statement in ROW_COUNT_TRIGGERS[op.get_bind().dialect.name]:
        op.execute(statement)
    op.execute("INSERT INTO row_counts (table_name, row_count) SELECT 'clips', count(*) FROM clips")


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        for name in ("insert", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS clips_row_count_{name}")
    else:
        for name in ("row_tally_insert", "row_tally_delete", "row_count_insert", "row_count_delete",
                     "row_count_truncate"):
            op.execute(f"DROP TRIGGER IF EXISTS clips_{name} ON clips")
        op.execute("DROP FUNCTION IF EXISTS clips_row_count_keep()")
        op.execute("DROP FUNCTION IF EXISTS clips_row_count_tally()")
    op.drop_table('row_counts')
