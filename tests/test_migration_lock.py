"""Two `flask db upgrade` at once on a fresh PostgreSQL database both succeed.

Containers of a deploy start together; each runs the migrations. Without a lock both find the
database empty and both create the tables, and one dies with a UniqueViolation.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from dashboard.config import normalise_database_url

from server_support import ROOT

DATABASE_URL = os.environ.get("DATABASE_URL", "")

pytestmark = pytest.mark.skipif(
    not DATABASE_URL.startswith(("postgresql", "postgres:")),
    reason="an advisory lock of PostgreSQL (this runs in the PostgreSQL pass)")


@pytest.fixture
def fresh_database():
    """A new, empty database on the suite's PostgreSQL server, dropped afterwards."""
    url = make_url(normalise_database_url(DATABASE_URL))
    name = f"{url.database}_miglock_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def upgrade(url) -> subprocess.Popen:
    env = dict(os.environ, FLASK_APP="wsgi", DATABASE_URL=url.render_as_string(hide_password=False))
    return subprocess.Popen([sys.executable, "-m", "flask", "db", "upgrade"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_two_upgrades_racing_on_a_fresh_database_both_succeed(fresh_database):
    racers = [upgrade(fresh_database) for _ in range(2)]
    outputs = [racer.communicate(timeout=180)[0] for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0], "\n\n".join(outputs)

    engine = create_engine(fresh_database)
    try:
        with engine.connect() as conn:
            versions = list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert len(versions) == 1
    assert {"clips", "publish_logs", "ledger_events", "users"} <= tables
