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
    # pysqlite sends no BEGIN of its own; _sqlite_statement sends it (deferred or IMMEDIATE).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# SQLite transactions, as this module runs them. A transaction that only reads takes no lock: in
# WAL mode it reads a snapshot and blocks no writer. One that writes takes the write lock at its
# first write (or SELECT ... FOR UPDATE, or take_write_lock) and keeps it to its end.
#
# The lock is never taken by upgrading a transaction that has read: SQLite refuses that upgrade
# at once with "database is locked" when another writer holds the lock or committed since the
# read (the busy timeout does not apply to it). Instead the reads so far end (nothing was
# written) and the transaction starts again with BEGIN IMMEDIATE, which waits for the lock under
# the busy timeout. What was read before stays as read, as with PostgreSQL's READ COMMITTED: a
# decision that must hold until the commit locks first (FOR UPDATE / take_write_lock), then reads.
_SQLITE_STATE = "dashboard.sqlite_transaction"
_NOT_BEGUN, _READING, _WRITING = "not begun", "reading", "writing"
_READ_STATEMENTS = ("SELECT", "PRAGMA", "EXPLAIN")


@event.listens_for(Engine, "begin")
def _sqlite_begin(conn):
    """SQLAlchemy began a transaction: SQLite's BEGIN waits for its first statement."""
    if conn.dialect.name == "sqlite":
        conn.info[_SQLITE_STATE] = _NOT_BEGUN


@event.listens_for(Engine, "commit")
@event.listens_for(Engine, "rollback")
def _sqlite_end(conn):
    if conn.dialect.name == "sqlite":
        conn.info.pop(_SQLITE_STATE, None)


def _writes(statement: str, context) -> bool:
    """True for a statement that needs SQLite's write lock (a savepoint counts: it guards a write)."""
    if context is not None and context.compiled is not None:
        if context.isinsert or context.isupdate or context.isdelete:
            return True
        if getattr(context.compiled.statement, "_for_update_arg", None) is not None:
            return True  # SQLite's SQL has no FOR UPDATE: the lock stands in for it
    return not statement.lstrip()[:8].upper().startswith(_READ_STATEMENTS)


def _sqlite_lock(conn) -> None:
    """Make the connection's transaction hold the write lock from now on."""
    state = conn.info.get(_SQLITE_STATE)
    if state == _WRITING or state is None:
        return
    raw = conn.connection.driver_connection
    if state == _READING:
        raw.execute("COMMIT")  # ends the reads only: nothing was written yet
    raw.execute("BEGIN IMMEDIATE")
    conn.info[_SQLITE_STATE] = _WRITING


@event.listens_for(Engine, "before_cursor_execute")
def _sqlite_statement(conn, _cursor, statement, _parameters, context, _executemany):
    """BEGIN before a transaction's first statement; the write lock before its first write."""
    state = conn.info.get(_SQLITE_STATE)
    if state is None or state == _WRITING or conn.dialect.name != "sqlite":
        return
    if _writes(statement, context):
        _sqlite_lock(conn)
    elif state == _NOT_BEGUN:
        conn.connection.driver_connection.execute("BEGIN")
        conn.info[_SQLITE_STATE] = _READING


def take_write_lock(session) -> None:
    """Hold SQLite's write lock in the session's transaction from now until it ends, so that
    what is read next stays true until the commit (no-op on other databases: lock rows there)."""
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        _sqlite_lock(conn)
