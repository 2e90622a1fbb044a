"""database_error_cause names what went wrong with the database in its own words, from errors
the test database really raises: locked, timed out, unreachable, integrity, or another error;
and never repeats the driver's message, with the statement's parameters in it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import create_engine, text

from dashboard.errors import database_error_cause
from dashboard.models import Clip

from outage import locked_sqlite

SECRET = "sk_live_never-in-a-log"


def raised(action: Callable[[], object]) -> Exception:
    with pytest.raises(Exception) as caught:
        action()
    return caught.value


@pytest.fixture
def on_postgresql(db) -> bool:
    return db.engine.dialect.name == "postgresql"


def test_a_refused_constraint_is_an_integrity_error_without_the_values(db, make_clip):
    clip_id = make_clip().id
    db.session.add(Clip(id=clip_id, title=SECRET, description=SECRET, media="https://cdn.example.com/b.mp4"))
    error = raised(db.session.commit)
    db.session.rollback()
    assert SECRET in str(error)  # the driver's message quotes the parameters ...
    assert database_error_cause(error) == "database integrity error"  # ... the cause does not


def test_a_bad_statement_is_a_database_error(db):
    error = raised(lambda: db.session.execute(text("SELECT * FROM no_such_table")))
    db.session.rollback()
    assert database_error_cause(error) == "database error"


def test_a_database_that_cannot_be_reached_is_unreachable(db, on_postgresql):
    url = db.engine.url
    nowhere = (url.set(port=1) if on_postgresql
               else url.set(database="/nonexistent-directory/for/sure/dashboard.sqlite3"))
    engine = create_engine(nowhere, connect_args={"connect_timeout": 2} if on_postgresql else {})
    try:
        assert database_error_cause(raised(engine.connect)) == "database unreachable"
    finally:
        engine.dispose()


def test_waiting_too_long_for_a_pooled_connection_is_a_timeout(db):
    engine = create_engine(db.engine.url, pool_size=1, max_overflow=0, pool_timeout=0.01)
    try:
        with engine.connect():
            assert database_error_cause(raised(engine.connect)) == "database timed out"
    finally:
        engine.dispose()


def test_a_lock_held_by_another_writer_is_locked(db, tmp_path, on_postgresql):
    if on_postgresql:
        with db.engine.connect() as holder, db.engine.connect() as waiter:
            holder.execute(text("LOCK TABLE clips IN ACCESS EXCLUSIVE MODE"))
            waiter.execute(text("SET lock_timeout = '10ms'"))
            error = raised(lambda: waiter.execute(text("SELECT count(*) FROM clips")))
    else:
        with locked_sqlite(tmp_path / "locked.sqlite3") as write:
            error = raised(write)
    assert database_error_cause(error) == "database is locked"


def test_postgresql_statement_timeout_and_lost_connection(db, on_postgresql):
    if not on_postgresql:
        pytest.skip("PostgreSQL's statement_timeout and backend termination")
    with db.engine.connect() as slow:
        slow.execute(text("SET statement_timeout = '10ms'"))
        error = raised(lambda: slow.execute(text("SELECT pg_sleep(1)")))
    assert database_error_cause(error) == "database timed out"

    with db.engine.connect() as lost, db.engine.connect() as admin:
        backend = lost.execute(text("SELECT pg_backend_pid()")).scalar()
        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        error = raised(lambda: lost.execute(text("SELECT 1")))
    assert database_error_cause(error) == "database unreachable"
