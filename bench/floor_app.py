"""The floor of the publish path: a minimal Flask + SQLAlchemy app doing the project's writes.

`POST /publish` with the project's JSON body writes what one immediate publish writes, in the
same two writes the design asks for (no transaction held across the platform call): a pending
publish log with its `publish_started` and provider events, committed; then the log's outcome
and its `publish_successful` event, committed together (on PostgreSQL, as the project does, one
statement: the event inserted from the UPDATE's RETURNING). No token, no validation beyond reading
the JSON, no templates, no quota, no idempotency: what is left is HTTP + Flask + SQLAlchemy +
the database on this machine. `bench floor` serves it with the project's gunicorn.conf.py
beside the project itself and reports the project's requests/s as a ratio of this one's.

It reads DATABASE_URL (a database the project's migrations made) and nothing of `dashboard`:
importing the project would bring its engine hooks along.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from datetime import UTC, datetime

from flask import Flask, jsonify, request
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    create_engine,
    event,
    literal,
    select,
)

metadata = MetaData()
publish_logs = Table(
    "publish_logs", metadata,
    Column("id", Uuid, primary_key=True), Column("clip_id", Uuid), Column("platform", String),
    Column("social_account_id", Uuid), Column("status", String), Column("provider", String),
    Column("external_post_id", String), Column("external_url", String), Column("caption", Text),
    Column("hashtags", JSON), Column("requested_at", DateTime), Column("started_at", DateTime),
    Column("published_at", DateTime), Column("attempts", Integer), Column("created_at", DateTime),
    Column("updated_at", DateTime),
)
ledger_events = Table(
    "ledger_events", metadata,
    Column("id", Uuid, primary_key=True), Column("event_type", String), Column("entity_type", String),
    Column("entity_id", Uuid), Column("metadata", JSON), Column("created_at", DateTime),
)


def _url() -> str:
    url = os.environ["DATABASE_URL"]
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


engine = create_engine(_url())
autocommit_engine = engine.execution_options(isolation_level="AUTOCOMMIT")  # the same pool


@event.listens_for(engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    """The project's SQLite settings (WAL, busy timeout, synchronous=NORMAL)."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "busy_timeout=30000", "foreign_keys=ON", "synchronous=NORMAL"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(tzinfo=None) if engine.dialect.name == "sqlite" else now


def _event(event_type: str, clip_id: uuid.UUID, data: dict) -> dict:
    return {"id": uuid.uuid4(), "event_type": event_type, "entity_type": "clip", "entity_id": clip_id,
            "metadata": data, "created_at": _now()}


app = Flask(__name__)
# gunicorn.conf.py starts the dashboard's web sweep in every worker; the floor has nothing to sweep.
app.config["WEB_SWEEP_INTERVAL_SECONDS"] = 0


@app.post("/publish")
def publish():
    body = json.loads(request.get_data())
    clip_id = uuid.UUID(body["clip_id"])
    platform = body["platform"]
    log_id = uuid.uuid4()
    now = _now()
    with engine.begin() as conn:
        conn.execute(publish_logs.insert().values(
            id=log_id, clip_id=clip_id, platform=platform, status="pending", provider="simulator",
            caption=body["metadata"]["caption"], hashtags=body["metadata"]["hashtags"],
            requested_at=now, started_at=now, attempts=1, created_at=now, updated_at=now))
        conn.execute(ledger_events.insert(), [
            _event("publish_started", clip_id, {"platform": platform, "publish_log_id": str(log_id)}),
            _event("publish_provider_fallback", clip_id, {"platform": platform, "reason": "no_account",
                                                          "publish_log_id": str(log_id)}),
        ])
    external_id = uuid.uuid4().hex
    outcome = publish_logs.update().where(publish_logs.c.id == log_id).values(
        status="success", external_post_id=external_id, published_at=_now(), updated_at=_now())
    done = _event("publish_successful", clip_id, {
        "platform": platform, "external_post_id": external_id, "publish_log_id": str(log_id)})
    if engine.dialect.name == "postgresql":
        # As the project writes it there: the event from the UPDATE's RETURNING, one statement.
        written = outcome.returning(publish_logs.c.id).cte("written")
        with autocommit_engine.connect() as conn:
            conn.execute(ledger_events.insert().from_select(list(done), select(
                *(literal(value, ledger_events.c[name].type) for name, value in done.items())
            ).select_from(written)))
    else:
        with engine.begin() as conn:
            conn.execute(outcome)
            conn.execute(ledger_events.insert(), [done])
    return jsonify(success=True, external_post_id=external_id, platform=platform, clip_id=str(clip_id))


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")
