"""clip short search: an index of each clip's 1- and 2-character substrings

Revision ID: f6a8b0c2d4e6
Revises: e5f7a9b1c3d5
Create Date: 2026-12-02 01:40:00

`?q=` of 1 or 2 characters, which no trigram answers, read every clip (1-2 s at 1,000,000
clips when few match). PostgreSQL answers it from a GIN index on clip_short_terms(); SQLite from
the FTS5 table and triggers of dashboard.models.CLIP_SHORT_SEARCH_DDL, filled here with the
existing clips.
"""
from alembic import op

from dashboard.models import (
    CLIP_SHORT_SEARCH_DDL,
    CLIP_SHORT_SEARCH_FILL,
    CLIP_SHORT_SEARCH_TABLE,
    CLIP_SHORT_TERMS_FUNCTION,
)

# revision identifiers, used by Alembic.
revision = 'f6a8b0c2d4e6'
down_revision = 'e5f7a9b1c3d5'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CLIP_SHORT_TERMS_FUNCTION)
        op.execute("CREATE INDEX ix_clips_short_terms ON clips "
                   "USING gin (clip_short_terms(title, description, media))")
        return
    for statement in CLIP_SHORT_SEARCH_DDL["sqlite"]:
        op.execute(statement)
    op.execute(CLIP_SHORT_SEARCH_FILL)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_clips_short_terms")
        op.execute("DROP FUNCTION IF EXISTS clip_short_terms(text, text, text)")
        return
    for name in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS clip_short_search_{name}")
    op.execute(f"DROP TABLE IF EXISTS {CLIP_SHORT_SEARCH_TABLE}")
