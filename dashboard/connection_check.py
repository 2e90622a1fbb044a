"""Checking a pooled database connection before each use, nearly always without a round trip.

A connection the server ended (a restart, `pg_terminate_backend`, `idle_session_timeout`, a proxy
in between closing it) must not fail the request that checks it out next. SQLAlchemy's
`pool_pre_ping` makes sure with a query on every checkout: a round trip, twice per publish.

A server that ends a connection sends it a last message (PostgreSQL's FATAL) and closes it, so
the connection's socket has something to read: the message, then end of file. A healthy idle
connection has nothing to read, and a zero-timeout poll of its socket says so for free (urllib3
checks its pooled HTTP connections the same way). So a connection is pinged only when its
socket has something to read (an idle connection may, rarely, be sent a harmless notice: the
ping tells), when the socket cannot be polled (SQLite has none), or when it sat in the pool
longer than `ping_after_idle` seconds: a firewall or load balancer that forgets an idle flow
sends nothing, and only the next packet meets its reset. A failed ping invalidates the pool,
as `pool_pre_ping` does, and the pool hands out a new connection instead.
"""

from __future__ import annotations

import select
import time

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
