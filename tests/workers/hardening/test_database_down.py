"""While the database is away, pages answer 503 with a page that does not need it (not 500), the
API answers problem+json 503, and the log line says what went wrong."""

from __future__ import annotations

import logging

import pytest

from outage import locked_sqlite, outage_fixtures

outage, app_config, database_outage = outage_fixtures()


@pytest.mark.parametrize("url", ["/", "/clips", "/history", "/accounts/"])
def test_pages_answer_503_while_the_database_is_down(client, login, database_outage, url, caplog):
    login("editor")
    database_outage.cut()
    with caplog.at_level(logging.ERROR):
        response = client.get(url)
    assert response.status_code == 503
    html = response.get_data(as_text=True)
    assert "the database is unreachable" in html and "<h1>503" in html
    assert any("database unreachable" in record.getMessage() for record in caplog.records)

    database_outage.restore()
    assert client.get(url).status_code == 200


def test_the_api_answers_problem_json_503(client, api_headers, database_outage):
    headers = api_headers("viewer")
    database_outage.cut()
    response = client.get("/api/clips", headers=headers)
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["detail"] == "the database is unreachable; try again shortly"


def test_a_locked_sqlite_database_is_reported_as_locked_not_unreachable(app, client, tmp_path, caplog):
    """A real "database is locked" (another connection holds SQLite's write lock), raised in a
    request: the answer and the log line say locked, not unreachable."""
    with locked_sqlite(tmp_path / "locked.sqlite3") as write:
        app.add_url_rule("/api/locked-probe", "locked_probe", write)
        app.add_url_rule("/locked-probe", "locked_probe_page", write)
        with caplog.at_level(logging.ERROR):
            api = client.get("/api/locked-probe")
            page = client.get("/locked-probe")

    assert api.status_code == page.status_code == 503
    assert "locked" in api.get_json()["detail"] and "unreachable" not in api.get_json()["detail"]
    assert "locked by another writer" in page.get_data(as_text=True)
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("database is locked on GET /api/locked-probe") for line in lines), lines
    assert not any("unreachable" in line for line in lines)


def test_a_wait_for_a_pooled_connection_that_times_out_is_reported_as_timed_out(app, client, db,
                                                                                 caplog):
    """Every connection of a pool in use and the wait for one running out (a real pool's
    TimeoutError): 503 "too slow", not a 500 and not "unreachable"."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db.engine.url, pool_size=1, max_overflow=0, pool_timeout=0.05)

    def query() -> str:
        with engine.connect() as conn:
            return str(conn.execute(text("SELECT 1")).scalar())

    app.add_url_rule("/api/pool-probe", "pool_probe", query)
    app.add_url_rule("/pool-probe", "pool_probe_page", query)
    try:
        with engine.connect():  # the pool's only connection, held
            with caplog.at_level(logging.ERROR):
                api = client.get("/api/pool-probe")
                page = client.get("/pool-probe")
        assert client.get("/api/pool-probe").get_data(as_text=True) == "1"  # free again
    finally:
        engine.dispose()

    assert api.status_code == page.status_code == 503
    assert api.mimetype == "application/problem+json"
    assert api.get_json()["detail"] == "the database is too slow to answer right now; try again shortly"
    assert "too slow to answer" in page.get_data(as_text=True)
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("database timed out on GET /api/pool-probe") for line in lines), lines
