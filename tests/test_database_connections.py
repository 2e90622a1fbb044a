"""Pooled PostgreSQL connections the server ended (a restart, pg_terminate_backend, an idle
timeout) are replaced before use: the next request succeeds. A healthy pooled connection is
handed out without a round trip to check it, and a rollback keeps its prepared statements
(dashboard/database_connections.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from conftest import base_config


@pytest.fixture
def app_config(request, database_uri):
    """The app as on PostgreSQL by default; parametrize (indirect) to set DATABASE_PING_IDLE_SECONDS."""
    if database_uri.startswith("sqlite"):
        pytest.skip("SQLite has no server to end a connection")
    return {**base_config(database_uri), "DATABASE_PRE_PING": True,
            "DATABASE_PING_IDLE_SECONDS": getattr(request, "param", 60.0)}


@pytest.fixture
def server(database_uri):
    """A connection of its own to the test's database, outside the app's pool."""
    from dashboard.config import normalise_database_url

    engine = create_engine(normalise_database_url(database_uri), poolclass=NullPool,
                           isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        yield conn
    engine.dispose()


@pytest.fixture
def pings(db, monkeypatch):
    """The pings the app's pool has sent so far (a list, one item per ping)."""
    sent: list[object] = []
    dialect = db.engine.dialect
    real = dialect.do_ping

    def counted(dbapi_connection):
        sent.append(dbapi_connection)
        return real(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", counted)
    return sent


def pooled_backends(db, count: int = 3) -> list[int]:
    """Fill the app's emptied pool with `count` connections; their server process ids."""
    db.session.remove()
    db.engine.dispose()
    held = [db.engine.raw_connection() for _ in range(count)]
    pids = [conn.driver_connection.info.backend_pid for conn in held]
    for conn in held:
        conn.close()  # back to the pool, idle
    return pids


def terminate(server, pids: list[int]) -> None:
    """End those server processes, as a restart or an administrator would, and wait until they are gone."""
    for pid in pids:
        assert server.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar()


def publish(client, headers, clip_id):
    return client.post("/publishing/publish", headers=headers, json={
        "clip_id": clip_id, "platform": "tiktok", "metadata": {"caption": "After the restart"}})


@pytest.fixture
def list_clips(client, db, api_headers):
    """list_clips() -> the status of GET /api/clips, its connection back in the pool afterwards
    (the tests' app context outlives a request: in production each request ends its session)."""
    headers = api_headers("viewer")

    def get() -> int:
        status = client.get("/api/clips", headers=headers).status_code
        db.session.remove()
        return status

    return get


def test_requests_after_the_server_ended_every_pooled_connection_succeed(
        client, db, api_headers, make_clip, list_clips, server, pings):
    headers = api_headers("editor")
    clip = str(make_clip().id)
    terminate(server, pooled_backends(db))

    response = publish(client, headers, clip)
    assert response.status_code == 200 and response.get_json()["success"] is True
    assert pings, "a connection the server ended was pinged before use"
    terminate(server, pooled_backends(db))
    assert list_clips() == 200


def test_one_ended_connection_among_healthy_ones_is_replaced(client, db, api_headers, make_clip, server):
    headers = api_headers("editor")
    clip = str(make_clip().id)
    first, *_ = pooled_backends(db)
    terminate(server, [first])  # the pool hands out its oldest idle connection first

    for _ in range(4):
        response = publish(client, headers, clip)
        assert response.status_code == 200 and response.get_json()["success"] is True


def test_a_healthy_pooled_connection_is_handed_out_without_a_ping(list_clips, pings):
    assert list_clips() == 200
    pings.clear()

    for _ in range(5):
        assert list_clips() == 200
    assert pings == []


@pytest.mark.parametrize("app_config", [0.0], indirect=True)
def test_ping_idle_seconds_zero_pings_every_checkout(list_clips, pings):
    assert list_clips() == 200
    pings.clear()

    for _ in range(3):
        assert list_clips() == 200
    assert len(pings) == 3


PREPARED = text("SELECT count(*) FROM clips WHERE title = :title")


def prepared_on_server(conn) -> set[str]:
    return set(conn.execute(text("SELECT statement FROM pg_prepared_statements")).scalars())


def test_a_rollback_after_reads_keeps_the_prepared_statements(db):
    """Every read-only request ends with a ROLLBACK: the statements the connection prepared stay
    prepared (psycopg's own rollback would drop them all from the server)."""
    with db.engine.connect() as conn:
        for n in range(6):  # psycopg prepares a statement at its sixth run
            conn.execute(PREPARED, {"title": f"t{n}"})
        conn.rollback()
        assert str(PREPARED).replace(":title", "$1") in prepared_on_server(conn)
        assert conn.execute(PREPARED, {"title": "again"}).scalar() == 0
        conn.rollback()


def test_a_rollback_after_a_failed_statement_leaves_the_connection_usable(db):
    from sqlalchemy.exc import DataError

    with db.engine.connect() as conn:
        for n in range(6):
            conn.execute(PREPARED, {"title": f"t{n}"})
        with pytest.raises(DataError):
            conn.execute(text("SELECT 1 / 0"))
        conn.rollback()
        assert conn.execute(PREPARED, {"title": "after the failure"}).scalar() == 0
        conn.commit()
