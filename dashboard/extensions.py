"""Extensions, created unbound here and bound to the app in `create_app`."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
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

from .direct_sql import connection_of

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
# Writers queue for the lock before BEGIN IMMEDIATE (_WriterQueue): waiting in BEGIN IMMEDIATE
# means SQLite's busy handler, which sleeps with back-off (1, 2, 5, 10 ... 100 ms) however soon
# the lock is free, so under load writers slept there while the lock stood idle, and the sleeper
# kept its process's other writers waiting behind it. The threads of a process queue on a
# threading lock; then the thread at its head queues against the other processes (the other
# gunicorn worker, queue workers, the CLI) on a file lock beside the database, which the kernel
# hands to the next waiting process as soon as it is released, and releases if a process dies.
# Each writer starts as soon as the one before it commits. SQLite's lock stays the guarantee:
# the queue is left on every end of the transaction, and a writer that cannot get through it
# within the connection's busy timeout goes on to BEGIN IMMEDIATE without it (SQLite decides,
# as before; a writer that will not wait, busy timeout 0, fails at once).
_SQLITE_STATE = "dashboard.sqlite_transaction"
_QUEUED = "dashboard.sqlite_writer_queue"  # the _WriterQueue whose head this connection is
_NOT_BEGUN, _READING, _WRITING = "not begun", "reading", "writing"
_READ_STATEMENTS = ("SELECT", "PRAGMA", "EXPLAIN")


class _WriterQueue:
    """The writers of one database file, one at a time: this process's threads on a threading
    lock, the processes on an exclusive lock of the file `<database>-writer.lock`."""

    def __init__(self, database: str) -> None:
        self._threads = threading.Lock()
        self._file_lock = threading.Condition()  # guards the three fields below
        self._file_held = False  # this process holds the file lock (for the head of _threads)
        self._wanted = False  # the head waits for the file lock
        self._kernel_wait = False  # the waiter thread is (about to be) blocked in flock
        self._waiter: threading.Thread | None = None
        self._head_queued = False  # the head waited for its turn (so others likely wait now)
        try:
            self._fd: int | None = os.open(f"{database}-writer.lock", os.O_RDONLY | os.O_CREAT, 0o644)
        except OSError:  # a folder we may not write: writers of other processes meet in SQLite
            self._fd = None

    def locked(self) -> bool:
        """Whether a writer of this process is in the queue's head."""
        return self._threads.locked()

    def enter(self, raw: sqlite3.Connection) -> bool:
        """Wait at most the connection's busy timeout for each lock; False if the threads'
        lock was not had in that time (the file lock is then not tried)."""
        deadline = None
        queued = not self._threads.acquire(blocking=False)
        if queued:
            deadline = time.monotonic() + _busy_timeout(raw)
            if deadline <= time.monotonic() or not self._threads.acquire(
                    timeout=deadline - time.monotonic()):
                return False
        self._head_queued = queued
        if self._fd is not None:
            try:
                self._take_file_lock(self._fd, raw, deadline)
            except BaseException:
                self._threads.release()
                raise
        return True

    def leave(self) -> None:
        """End this process's turn: the file lock first (the next thread of ours must find it
        free, not inherit a lock it will not know to release), then the threads' lock."""
        with self._file_lock:
            if self._file_held and self._fd is not None:
                self._file_held = False
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        queued = self._head_queued
        self._threads.release()
        if queued:
            # Others likely wait behind us. The next one needs this process's GIL to start,
            # and this thread would keep it for the rest of its request (up to the 5 ms switch
            # interval): hand it over now, or the lock stands idle meanwhile.
            time.sleep(0)

    def _take_file_lock(self, fd: int, raw: sqlite3.Connection, deadline: float | None) -> None:
        # flock itself cannot time out, so a waiter thread of this queue blocks in it on the
        # head's behalf while the head waits here with a timeout. A head that gives up leaves
        # the waiter blocked: it hands the lock to the next head, or releases it if none wants it.
        with self._file_lock:
            if not self._kernel_wait:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    pass
                else:
                    self._file_held = True
                    return
            if deadline is None:
                deadline = time.monotonic() + _busy_timeout(raw)
            if deadline <= time.monotonic():
                return
            self._wanted = True
            self._kernel_wait = True
            if self._waiter is None:
                self._waiter = threading.Thread(target=self._wait_in_kernel, args=(fd,),
                                                daemon=True, name="sqlite-writer-queue")
                self._waiter.start()
            self._file_lock.notify_all()
            self._file_lock.wait_for(lambda: self._file_held, deadline - time.monotonic())
            self._wanted = False

    def _wait_in_kernel(self, fd: int) -> None:
        while True:
            with self._file_lock:
                self._file_lock.wait_for(lambda: self._kernel_wait)
            fcntl.flock(fd, fcntl.LOCK_EX)
            with self._file_lock:
                self._kernel_wait = False
                if self._wanted:
                    self._file_held = True
                    self._file_lock.notify_all()
                else:
                    fcntl.flock(fd, fcntl.LOCK_UN)

    def forget(self) -> None:
        """In a forked child: close the inherited descriptor without unlocking (that would free
        the parent's lock; closing one copy of it does not)."""
        if self._fd is not None:
            os.close(self._fd)
        self._fd = None  # a connection of the parent's, if used here, leaves without flock
        self._file_held = False
        self._file_lock = threading.Condition()


def _busy_timeout(raw: sqlite3.Connection) -> float:
    (busy_timeout_ms,) = raw.execute("PRAGMA busy_timeout").fetchone()
    return busy_timeout_ms / 1000


_writer_queues: dict[str, _WriterQueue] = {}


@cache
def _writer_queue_of(database: str | None) -> _WriterQueue | None:
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = os.path.realpath(database)
    if path not in _writer_queues:
        _writer_queues[path] = _WriterQueue(path)
    return _writer_queues[path]


def _forget_writer_queues() -> None:
    """A forked child starts with free queues: a thread of the parent may have been in one."""
    for queue in _writer_queues.values():
        queue.forget()
    _writer_queues.clear()
    _writer_queue_of.cache_clear()


os.register_at_fork(after_in_child=_forget_writer_queues)


def _writer_queue(conn) -> _WriterQueue | None:
    """The queue of the connection's database file (None in memory)."""
    return _writer_queue_of(conn.engine.url.database)


def _leave_queue(info: dict) -> None:
    queue = info.pop(_QUEUED, None)
    if queue is not None:
        queue.leave()


@event.listens_for(Engine, "begin")
def _sqlite_begin(conn):
    """SQLAlchemy began a transaction: SQLite's BEGIN waits for its first statement."""
    if conn.dialect.name == "sqlite":
        conn.info[_SQLITE_STATE] = _NOT_BEGUN


@event.listens_for(Engine, "commit")
def _sqlite_commit(conn):
    """A writer commits before it leaves the writers' queue (SQLAlchemy's own COMMIT, after
    this event, then has nothing left to do): the next writer must find SQLite's lock free."""
    if (conn.dialect.name != "sqlite" or conn.invalidated
            or conn.info.pop(_SQLITE_STATE, None) != _WRITING):
        return
    try:
        conn.connection.driver_connection.execute("COMMIT")
    except sqlite3.Error as exc:
        raise OperationalError("COMMIT", None, exc) from exc
    finally:
        _leave_queue(conn.info)


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
        _leave_queue(conn.info)


@event.listens_for(Pool, "checkin")
def _released_at_checkin(_dbapi_connection, record):
    """Never stay in the writers' queue past a connection's use (the pool rolled it back)."""
    if record is not None:
        _leave_queue(record.info)


@event.listens_for(Pool, "invalidate")
def _released_at_invalidate(_dbapi_connection, record, _exception):
    _leave_queue(record.info)


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
    queue = _writer_queue(conn)
    if queue is not None and queue.enter(raw):
        conn.info[_QUEUED] = queue
    try:
        raw.execute("BEGIN IMMEDIATE")
    except BaseException:
        _leave_queue(conn.info)
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
    conn = connection_of(session)
    if conn.dialect.name == "sqlite":
        _sqlite_lock(conn)
