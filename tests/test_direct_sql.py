"""DirectStatement (dashboard/direct_sql.py) runs a publish's statements on the driver's cursor:
what it writes and reads must be what SQLAlchemy's Connection.execute would, on each database,
and its errors must be SQLAlchemy's."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import bindparam, event, insert, literal, select, update
from sqlalchemy.exc import IntegrityError, PendingRollbackError

from dashboard.direct_sql import DirectStatement, connection_of
from dashboard.models import Clip, LedgerEvent, PublishLog, utcnow

EVENTS = LedgerEvent.__table__
CLIPS = Clip.__table__
LOGS = PublishLog.__table__


def _clip_select():
    return select(CLIPS.c.id, CLIPS.c.title, CLIPS.c.duration_seconds, CLIPS.c.width,
                  CLIPS.c.created_at, CLIPS.c.media_key).where(CLIPS.c.id == bindparam("clip_id"))


def test_a_row_reads_as_connection_execute_returns_it(db, make_clip):
    clip = make_clip(title="Été — launch", duration_seconds=12.5, width=1080)
    connection = db.session.connection()
    direct = DirectStatement(_clip_select()).first(connection, {"clip_id": clip.id})
    expected = tuple(connection.execute(_clip_select(), {"clip_id": clip.id}).first())
    assert direct == expected
    assert direct[0] == clip.id and isinstance(direct[0], uuid.UUID)
    assert direct[4].tzinfo is not None  # UTCDateTime's processor ran
    assert DirectStatement(_clip_select()).first(connection, {"clip_id": uuid.uuid4()}) is None


def test_an_insert_fills_the_python_side_defaults_it_is_not_given(db, make_clip):
    clip = make_clip()
    statement = DirectStatement(insert(EVENTS))
    before = utcnow()
    first, second = uuid.uuid4(), uuid.uuid4()
    statement.executemany(db.session.connection(), [
        {"id": first, "event_type": "publish_started", "entity_type": "clip", "entity_id": clip.id,
         "metadata": {"platform": "tiktok", "n": 1}},
        {"id": second, "event_type": "publish_failed", "entity_type": "clip", "entity_id": clip.id,
         "metadata": {"reason": None}},
    ])
    statement.execute(db.session.connection(), {"id": uuid.uuid4(), "event_type": "x",
                                                "entity_type": "clip", "entity_id": clip.id})
    db.session.commit()
    rows = {row.id: row for row in db.session.execute(select(EVENTS)).all()}
    assert rows[first].metadata == {"platform": "tiktok", "n": 1}
    assert rows[second].metadata == {"reason": None}
    assert before <= rows[first].created_at <= utcnow()  # the column's default=utcnow
    assert [row.metadata for row in rows.values() if row.event_type == "x"] == [{}]  # default=dict


def test_many_of_no_rows_writes_nothing(db):
    DirectStatement(insert(EVENTS)).executemany(db.session.connection(), [])
    db.session.commit()
    assert db.session.execute(select(EVENTS)).all() == []


def test_an_update_counts_its_rows_and_binds_its_constants(db, make_clip):
    clip = make_clip()
    log_id = uuid.uuid4()
    db.session.execute(insert(LOGS).values(id=log_id, clip_id=clip.id, platform="tiktok",
                                           status="pending", attempts=1))
    db.session.commit()
    written = db.session.execute(select(LOGS.c.updated_at).where(LOGS.c.id == log_id)).scalar_one()
    statement = DirectStatement(
        update(LOGS).where(LOGS.c.id == bindparam("log_id"),
                           LOGS.c.status.in_([literal("pending"), literal("publishing")]))
        .values(status=bindparam("new_status")))
    connection = db.session.connection()
    assert statement.execute(connection, {"log_id": log_id, "new_status": "published"}) == 1
    assert statement.execute(connection, {"log_id": log_id, "new_status": "failed"}) == 0
    db.session.commit()
    status, updated_at = db.session.execute(
        select(LOGS.c.status, LOGS.c.updated_at).where(LOGS.c.id == log_id)).one()
    assert status == "published"
    assert updated_at > written  # the column's onupdate ran, as a flush's


def test_a_driver_error_is_sqlalchemys_and_the_transaction_rolls_back(db, make_clip):
    clip = make_clip()
    statement = DirectStatement(insert(EVENTS))
    row = {"id": uuid.uuid4(), "event_type": "x", "entity_type": "clip", "entity_id": clip.id,
           "metadata": {}}
    statement.execute(db.session.connection(), row)
    db.session.commit()
    with pytest.raises(IntegrityError):
        statement.execute(db.session.connection(), row)
    db.session.rollback()
    again = {**row, "id": uuid.uuid4()}
    statement.execute(db.session.connection(), again)  # the same driver connection, again usable
    db.session.commit()
    assert set(db.session.execute(select(EVENTS.c.id)).scalars()) == {row["id"], again["id"]}


def test_cursor_listeners_see_each_statement(db, make_clip):
    clip_id = make_clip().id
    seen = []

    def note(_conn, _cursor, statement, _parameters, context, executemany):
        seen.append((statement.split()[0], executemany))
        assert context.dialect is db.engine.dialect
        context.listener_note = "kept"  # as Sentry's integration keeps its span there

    def after(_conn, _cursor, _statement, _parameters, context, _executemany):
        seen.append(context.listener_note)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", note)
    event.listen(engine, "after_cursor_execute", after)
    try:
        DirectStatement(_clip_select()).first(db.session.connection(), {"clip_id": clip_id})
        statement = DirectStatement(insert(EVENTS))
        statement.executemany(db.session.connection(), [
            {"id": uuid.uuid4(), "event_type": "x", "entity_type": "clip", "entity_id": clip_id}
            for _ in range(2)])
        statement.executemany(db.session.connection(), [  # one row: one execution
            {"id": uuid.uuid4(), "event_type": "x", "entity_type": "clip", "entity_id": clip_id}])
        db.session.rollback()
    finally:
        event.remove(engine, "before_cursor_execute", note)
        event.remove(engine, "after_cursor_execute", after)
    assert seen == [("SELECT", False), "kept", ("INSERT", True), "kept", ("INSERT", False), "kept"]


class _Interrupted(BaseException):
    """What a worker's timeout or Ctrl-C raises in the middle of a statement."""


def test_an_interruption_invalidates_the_connection_it_may_have_left_mid_query(db, make_clip):
    clip_id = make_clip().id

    def interrupt(*_args):
        raise _Interrupted

    connection = db.session.connection()
    event.listen(db.engine, "before_cursor_execute", interrupt)
    try:
        with pytest.raises(_Interrupted):
            DirectStatement(_clip_select()).first(connection, {"clip_id": clip_id})
    finally:
        event.remove(db.engine, "before_cursor_execute", interrupt)
    assert connection.invalidated  # as Connection.execute leaves it: never back in the pool as is
    db.session.rollback()
    assert DirectStatement(_clip_select()).first(db.session.connection(), {"clip_id": clip_id})[0] == clip_id


def test_connection_of_is_the_sessions_connection_in_every_state(db, make_clip):
    clip_id = make_clip().id
    session = db.session
    first = connection_of(session)  # no transaction yet: one is begun, as Session.connection does
    assert session().in_transaction() and first is session.connection()
    assert connection_of(session) is first
    session.commit()
    second = connection_of(session)  # a new transaction, and the connection the session holds
    assert second is session.connection()
    with session.begin_nested():  # a savepoint: Session.connection answers
        assert connection_of(session) is session.connection()
    assert connection_of(session) is second
    second.invalidate()  # lost: what Session.connection gives for it, connection_of gives
    assert connection_of(session) is session.connection()
    session.rollback()
    assert DirectStatement(_clip_select()).first(connection_of(session), {"clip_id": clip_id})[0] == clip_id


def test_connection_of_a_failed_transaction_refuses_as_the_session_does(db, make_clip):
    clip_id = make_clip().id
    db.session.expunge_all()
    db.session.add(Clip(id=clip_id, title="a twin", media="https://cdn.example.com/b.mp4",
                        duration_seconds=3.0))
    with pytest.raises(IntegrityError):
        db.session.flush()
    with pytest.raises(PendingRollbackError):
        connection_of(db.session)
    db.session.rollback()
    assert connection_of(db.session) is db.session.connection()
