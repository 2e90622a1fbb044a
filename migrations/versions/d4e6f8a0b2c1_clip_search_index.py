"""clip search index: pg_trgm GIN indexes (PostgreSQL), an FTS5 trigram table (SQLite)

Revision ID: d4e6f8a0b2c1
Revises: b7e3c1d9a4f2
Create Date: 2026-12-01 14:10:00

`?q=` on the clips page and GET /api/clips is a case-insensitive substring match (ILIKE) on
title, description and media. PostgreSQL answers it from a trigram index on each column; SQLite
from the FTS5 table and triggers of dashboard.models.CLIP_SEARCH_DDL, filled here with the
existing clips.
"""
import sqlalchemy as sa
from alembic import op

from dashboard.models import CLIP_SEARCH_COLUMNS, CLIP_SEARCH_DDL, CLIP_SEARCH_TABLE

# revision identifiers, used by Alembic.
revision = 'd4e6f8a0b2c1'
down_revision = 'b7e3c1d9a4f2'
branch_labels = None
depends_on = None

_SEARCHED = ", ".join(CLIP_SEARCH_COLUMNS)


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        # The operator class by its schema's name: the extension may be installed already, in a
        # schema that is not on this connection's search_path.
        schema = op.get_bind().execute(sa.text(
            "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'")).scalar_one()
        for name in CLIP_SEARCH_COLUMNS:
            op.create_index(f"ix_clips_{name}_trgm", "clips", [name], postgresql_using="gin",
                            postgresql_ops={name: f"{schema}.gin_trgm_ops"})
        return
    for statement in CLIP_SEARCH_DDL["sqlite"]:
        op.execute(statement)
    op.execute(f"INSERT INTO {CLIP_SEARCH_TABLE} (clip_id, {_SEARCHED}) SELECT id, {_SEARCHED} FROM clips")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name in CLIP_SEARCH_COLUMNS:
            op.drop_index(f"ix_clips_{name}_trgm", table_name="clips")
        return  # the extension stays: other objects in the database may use it
    for name in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS clip_search_{name}")
    op.execute(f"DROP TABLE IF EXISTS {CLIP_SEARCH_TABLE}")
