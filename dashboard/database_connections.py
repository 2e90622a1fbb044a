"""The pool's database connections: checked before each use, nearly always without a round trip;
on PostgreSQL, rolled back without losing their prepared statements.

**The check.** A connection the server ended (a restart, `pg_terminate_backend`,
`idle_session_timeout`, a proxy in between closing it) must not fail the request that checks it
out next. SQLAlchemy's `pool_pre_ping` makes sure with a query on every checkout: a round trip,
twice per publish. A server that ends a connection sends it a last message (PostgreSQL's FATAL)
and closes it, so the connection's socket has something to read: the message, then end of file.
A healthy idle connection has nothing to read, and a zero-timeout poll of its socket says so for
free (urllib3 checks its pooled HTTP connections the same way). So a connection is pinged only
when its socket has something to read (an idle connection may, rarely, be sent a harmless
notice: the ping tells), when the socket cannot be polled (SQLite has none), or when it sat in
the pool longer than `DATABASE_PING_IDLE_SECONDS`: a firewall or load balancer that forgets an
idle flow sends nothing, and only the next packet meets its reset. A failed ping invalidates the
pool, as `pool_pre_ping` does, and the pool hands out a new connection instead.

**The rollback.** psycopg prepares a statement on the server once a connection has run it five
times (then only its parameters travel, and the server plans it once: about a third of the
server's CPU per publish). At every ROLLBACK it forgets them all and has the server drop them
(DEALLOCATE ALL), since a statement prepared in a transaction that failed may not exist. Every
request that only reads ends with a ROLLBACK, so with pages and publishes sharing a pool nothing
stayed prepared: each publish's statements were parsed and planned again. A transaction in which
nothing failed prepared everything it asked for, and prepared statements outlive a rollback, so
such a transaction is rolled back with libpq's own call, which leaves psycopg's list as it is; one
in which a statement failed is left to psycopg.
"""

from __future__ import annotations

import select
import time
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine

_CHECKED_IN_AT = "dashboard.checked_in_at"  # time.monotonic() of the connection's return to the pool
_READABLE = select.POLLIN | select.POLLPRI  # POLLHUP and POLLERR are always reported


def _has_nothing_to_read(dbapi_connection) -> bool:
    """True when the connection's socket has nothing to read now (False when it cannot tell)."""
    if getattr(dbapi_connection, "closed", True):  # psycopg saw it fail (sqlite3 has no `closed`)
        return False
    try:
        fd = dbapi_connection.fileno()
    except Exception:  # noqa: BLE001  (no socket, or not one we may poll: ping instead)
        return False
    poller = select.poll()  # not select.select(): a pool's descriptors may be above 1023
    poller.register(fd, _READABLE)
    return not poller.poll(0)


def set_up_pool(engine: Engine, config: Any) -> None:
    """The check before each use (if DATABASE_PRE_PING) and, on psycopg, the rollback above."""
    if config["DATABASE_PRE_PING"]:
        check_connections_at_checkout(engine, config["DATABASE_PING_IDLE_SECONDS"])
    if engine.dialect.driver == "psycopg":
        keep_prepared_statements_at_rollback(engine)


def check_connections_at_checkout(engine: Engine, ping_after_idle: float) -> None:
    """Before the pool hands out one of `engine`'s connections, make sure the server has not
    ended it: ping it when its socket has something to read or it was idle for longer than
    `ping_after_idle` seconds (0: ping every time), and replace it if the ping fails."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _note_checkin(_dbapi_connection, record) -> None:
        if record is not None:
            record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check(dbapi_connection, record, _proxy) -> None:
        checked_in_at = record.info.get(_CHECKED_IN_AT)
        if checked_in_at is None:
            return  # made for this checkout (a reconnection clears the record's info)
        if time.monotonic() - checked_in_at < ping_after_idle and _has_nothing_to_read(dbapi_connection):
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                # As pool_pre_ping: every older connection of the pool goes too (a restart
                # ended them all); this one is made again before the checkout returns.
                raise exc.InvalidatePoolError() from error
            raise


def keep_prepared_statements_at_rollback(engine: Engine) -> None:
    """Roll back `engine`'s psycopg transactions in which nothing failed with libpq's ROLLBACK,
    keeping the connection's prepared statements (psycopg's own rollback drops them all)."""
    from psycopg import Error as PsycopgError
    from psycopg.pq import TransactionStatus

    @event.listens_for(engine, "rollback")
    def _rollback(conn) -> None:
        if conn.closed or conn.invalidated:
            return
        pgconn = conn.connection.driver_connection.pgconn
        if pgconn.transaction_status != TransactionStatus.INTRANS:
            return  # nothing open (psycopg's rollback is then free), or failed: psycopg's to end
        try:
            pgconn.exec_(b"ROLLBACK")  # libpq waits for the answer without the GIL
        except PsycopgError:
            pass  # a broken connection: psycopg's own rollback, next, fails and reports it
