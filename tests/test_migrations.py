"""The Alembic migrations build exactly the models' schema, on an empty database.

The rest of the suite builds its schema with create_all(); this test is what keeps the two in
step. SQLite gets a fresh file; PostgreSQL (DATABASE_URL) a fresh schema, dropped afterwards.
"""

from __future__ import annotations

import logging
import os
import uuid

import flask_migrate
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from dashboard import create_app
from dashboard.config import normalise_database_url
from dashboard.extensions import db
from dashboard.models import CLIP_SEARCH_TABLE, CLIP_SHORT_SEARCH_TABLE

from conftest import base_config

# migrations/env.py (Flask-Migrate's template) still calls db.get_engine(), deprecated in
# Flask-SQLAlchemy 3.1; the warning says nothing about our schema.
pytestmark = [
    pytest.mark.filterwarnings("ignore:'get_engine' is deprecated:DeprecationWarning"),
    # PostgreSQL gives a generated column's expression back in its own spelling; Alembic cannot
    # compare those (it never alters them) and says so.
    pytest.mark.filterwarnings("ignore:Computed default on publish_logs.counts_at:UserWarning"),
    # The PostgreSQL-only index on clip_short_terms(...): SQLite cannot reflect an expression.
    pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index:UserWarning"),
]

@pytest.fixture
def keep_logging():
    """Alembic's env.py runs logging.fileConfig, which would silence every logger of later tests."""
    manager = logging.root.manager
    disabled = {name: logger.disabled for name, logger in manager.loggerDict.items()
                if isinstance(logger, logging.Logger)}
    root_level, root_handlers = logging.root.level, list(logging.root.handlers)
    yield
    for name, logger in manager.loggerDict.items():
        if isinstance(logger, logging.Logger):
            logger.disabled = disabled.get(name, False)
    logging.root.setLevel(root_level)
    logging.root.handlers[:] = root_handlers


@pytest.fixture
def empty_database(tmp_path):
    """(URI, engine options) of a database holding nothing at all."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        yield f"sqlite:///{tmp_path / 'migrated.sqlite3'}", {}
        return
    url = normalise_database_url(url)
    schema = f"migration_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield url, {"connect_args": {"options": f"-csearch_path={schema}"}}
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def migrated_app(empty_database, keep_logging):
    url, engine_options = empty_database
    config = base_config(url)
    config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options
    app = create_app(config)
    with app.app_context():
        assert inspect(db.engine).get_table_names() == []
        flask_migrate.upgrade()
        yield app
        db.session.remove()
        db.engine.dispose()


def on_this_dialect(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic ignores `ddl_if`: leave out the PostgreSQL-only search indexes on SQLite, and
    SQLite's clip search tables (FTS5, outside the metadata) with their shadow tables."""
    dialect = db.engine.dialect.name
    if type_ == "table" and reflected and name.startswith((CLIP_SEARCH_TABLE, CLIP_SHORT_SEARCH_TABLE)):
        return dialect != "sqlite"
    ddl_if = getattr(obj, "_ddl_if", None)
    return ddl_if is None or ddl_if.dialect is None or ddl_if.dialect == dialect


def schema_differences() -> list:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True,
                                                         "compare_server_default": True,
                                                         "include_object": on_this_dialect})
        return compare_metadata(context, db.metadata)


def sqlite_search_tables() -> set[str]:
    """The FTS5 tables of clip search and the shadow tables SQLite keeps for them."""
    if db.engine.dialect.name != "sqlite":
        return set()
    shadows = ("data", "idx", "content", "docsize", "config")
    return {f"{table}{part}" for table in (CLIP_SEARCH_TABLE, CLIP_SHORT_SEARCH_TABLE)
            for part in ("", *(f"_{shadow}" for shadow in shadows))}


def test_migrations_produce_the_models_schema(migrated_app):
    assert schema_differences() == []
    tables = set(inspect(db.engine).get_table_names())
    assert tables == set(db.metadata.tables) | {"alembic_version"} | sqlite_search_tables()


def test_migrations_have_one_head_and_downgrade_cleanly(migrated_app):
    script = ScriptDirectory.from_config(migrated_app.extensions["migrate"].migrate.get_config())
    assert len(script.get_heads()) == 1

    flask_migrate.downgrade(revision="base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}

    flask_migrate.upgrade()
    assert schema_differences() == []


def test_clip_search_migration_finds_the_clips_made_before_it(migrated_app):
    from dashboard.clips import list_clips
    from dashboard.models import Clip

    flask_migrate.downgrade(revision="b7e3c1d9a4f2")
    db.session.add(Clip(title="Made before the search index", media="https://cdn.example.com/a.mp4"))
    db.session.commit()
    flask_migrate.upgrade()

    assert [clip.title for clip in list_clips(db, "before the SEARCH").items] == ["Made before the search index"]


def test_row_counts_migration_counts_the_clips_made_before_it(migrated_app):
    from dashboard import stats
    from dashboard.models import Clip

    flask_migrate.downgrade(revision="d4e6f8a0b2c1")
    db.session.add_all([Clip(title=f"Made before the count {i}", media="https://cdn.example.com/a.mp4")
                        for i in range(2)])
    db.session.commit()
    flask_migrate.upgrade()

    assert stats.counts(db).clips == 2
    db.session.add(Clip(title="Made after it", media="https://cdn.example.com/b.mp4"))
    db.session.commit()
    assert stats.counts(db).clips == 3


def test_short_search_migration_finds_the_clips_made_before_it(migrated_app):
    from dashboard.clips import list_clips
    from dashboard.models import Clip

    flask_migrate.downgrade(revision="e5f7a9b1c3d5")
    db.session.add(Clip(title="Made before", description="the short index", media="https://cdn.example.com/a.mp4"))
    db.session.commit()
    flask_migrate.upgrade()

    assert [clip.title for clip in list_clips(db, "SH").items] == ["Made before"]
    assert list_clips(db, "zq").items == []


def test_day_count_shards_migration_keeps_the_counts_both_ways(migrated_app):
    from dashboard import stats
    from dashboard.models import Clip, PublishLog, utcnow

    def tiktok():
        rate = {r.platform: r for r in stats.success_rates(db)}["tiktok"]
        return rate.succeeded, rate.failed

    def add_log(status):
        clip = Clip(title="Counted", media="https://cdn.example.com/a.mp4")
        db.session.add(clip)
        db.session.flush()
        db.session.add(PublishLog(clip_id=clip.id, platform="tiktok", status=status, provider="simulator",
                                  requested_at=utcnow()))
        db.session.commit()

    flask_migrate.downgrade(revision="f6a8b0c2d4e6")
    add_log("success")
    add_log("failed")
    flask_migrate.upgrade()
    assert tiktok() == (1, 1)

    add_log("success")  # counted by the new triggers, in this connection's shard
    assert tiktok() == (2, 1)
    db.session.remove()
    flask_migrate.downgrade(revision="f6a8b0c2d4e6")
    add_log("failed")  # and by the old ones again
    assert tiktok() == (2, 2)
