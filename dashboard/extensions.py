"""Extensions, created unbound here and bound to the app in `create_app`."""

import sqlite3

from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from htmx_flask import Htmx
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine

# Named constraints so that Alembic can alter them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
migrate = Migrate(render_as_batch=True, compare_type=True)
csrf = CSRFProtect()
htmx = Htmx()
login_manager = LoginManager()


@event.listens_for(Engine, "connect")
def _sqlite_on_connect(dbapi_connection, _record):
    """WAL and a busy timeout on every SQLite connection; we issue BEGIN ourselves (below)."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # pysqlite's own BEGIN is deferred; see _sqlite_begin for why that is not enough.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin(conn):
    """Take SQLite's write lock at BEGIN.

    A deferred transaction that reads and then writes fails at once with "database is locked"
    when another writer committed in between (the busy timeout does not apply to that upgrade).
    BEGIN IMMEDIATE waits for the lock instead, under the busy timeout.
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
