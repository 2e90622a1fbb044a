"""Extensions, created unbound here and bound to the app in `create_app`."""

from __future__ import annotations

import os
import sqlite3
import threading
from functools import cache

from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from htmx_flask import Htmx
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import Pool

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
#
# Writers of one process queue for the lock on a lock of the process's own (_writer_lock) before
# BEGIN IMMEDIATE. Waiting in BEGIN IMMEDIATE means SQLite's busy handler, which sleeps with
# back-off (1, 2, 5, 10 ... 100 ms) however soon the lock is free: under load most threads of a
# gunicorn worker slept there while the lock stood idle. Queued on a threading lock, a writer
# starts as soon as the one before it commits; only one thread per process still meets the busy
# handler, against writers of other processes. The SQLite lock stays the guarantee: the process
# lock is given up on every end of the transaction, and a writer that cannot get it within the
# connection's busy timeout goes on to BEGIN IMMEDIATE without it (SQLite decides, as before).
_SQLITE_STATE = "dashboard.sqlite_transaction"
_PROCESS_LOCK = "dashboard.sqlite_process_lock"  # the _writer_lock this connection holds
_NOT_BEGUN, _READING, _WRITING = "not begun", "reading", "writing"
_READ_STATEMENTS = ("SELECT", "PRAGMA", "EXPLAIN")


_writer_locks: dict[str, threading.Lock] = {}


@cache
def _writer_lock_of(database: str | None) -> threading.Lock | None:
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return _writer_locks.setdefault(os.path.realpath(database), threading.Lock())


def _forget_writer_locks() -> None:
    """A forked child starts with free locks: a thread of the parent may have held one."""
    _writer_locks.clear()
    _writer_lock_of.cache_clear()


os.register_at_fork(after_in_child=_forget_writer_locks)


def _writer_lock(conn) -> threading.Lock | None:
    """This process's lock for writers of the connection's database file (None in memory)."""
    return _writer_lock_of(conn.engine.url.database)


def _acquire(lock: threading.Lock, raw: sqlite3.Connection) -> bool:
    """Wait for the process lock at most as long as SQLite would wait for its own."""
    if lock.acquire(blocking=False):
        return True
    (busy_timeout_ms,) = raw.execute("PRAGMA busy_timeout").fetchone()
    return lock.acquire(timeout=busy_timeout_ms / 1000) if busy_timeout_ms else False


def _release(info: dict) -> None:
    lock = info.pop(_PROCESS_LOCK, None)
    if lock is not None:
        lock.release()


@event.listens_for(Engine, "begin")
def _sqlite_begin(conn):
    """SQLAlchemy began a transaction: SQLite's BEGIN waits for its first statement."""
    if conn.dialect.name == "sqlite":
        conn.info[_SQLITE_STATE] = _NOT_BEGUN


@event.listens_for(Engine, "commit")
def _sqlite_commit(conn):
    """A writer commits before it gives up the process lock (SQLAlchemy's own COMMIT, after
    this event, then has nothing left to do): the next writer must find SQLite's lock free."""
    if (conn.dialect.name != "sqlite" or conn.invalidated
            or conn.info.pop(_SQLITE_STATE, None) != _WRITING):
        return
    try:
        conn.connection.driver_connection.execute("COMMIT")
    except sqlite3.Error as exc:
        raise OperationalError("COMMIT", None, exc) from exc
    finally:
        _release(conn.info)


@event.listens_for(Engine, "rollback")
def _sqlite_rollback(conn):
    # An invalidated connection has no info left (its pool event gave the lock up).
    if (conn.dialect.name != "sqlite" or conn.invalidated
            or conn.info.pop(_SQLITE_STATE, None) != _WRITING):
        return
    try:
        conn.connection.driver_connection.execute("ROLLBACK")
    except Exception:  # noqa: BLE001  (SQLAlchemy's own ROLLBACK follows and reports)
        pass
    finally:
        _release(conn.info)


@event.listens_for(Pool, "checkin")
def _released_at_checkin(_dbapi_connection, record):
    """Never keep the process lock past a connection's use (the pool rolled it back)."""
    if record is not None:
        _release(record.info)


@event.listens_for(Pool, "invalidate")
def _released_at_invalidate(_dbapi_connection, record, _exception):
    _release(record.info)


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
        conn.info[_SQLITE_STATE] = _NOT_BEGUN
    lock = _writer_lock(conn)
    if lock is not None and _acquire(lock, raw):
        conn.info[_PROCESS_LOCK] = lock
    try:
        raw.execute("BEGIN IMMEDIATE")
    except BaseException:
        _release(conn.info)
        raise
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
