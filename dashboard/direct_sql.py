"""The few statements every publish runs, sent straight to the driver's cursor.

For a short statement, SQLAlchemy's `Connection.execute` costs more than the statement itself:
an execution context, a result object and its metadata and, on PostgreSQL, psycopg's
`cursor.description`, which builds a Python object per column on every SELECT. A
`DirectStatement` is a Core statement compiled once per dialect (and per set of columns, for an
INSERT) and run on the DBAPI cursor of a SQLAlchemy connection, in that connection's
transaction, with nothing of SQLAlchemy's per-execution machinery but what a result needs:

- values go in through the same bind processors `Connection.execute` applies (a UUID as hex
  on SQLite, a UTC datetime as SQLite's text) and come out through the same result processors,
  so a row reads as `Connection.execute(...).first()` would return it;
- `before_cursor_execute` and `after_cursor_execute` listeners see every statement (SQLite's
  write lock is taken in one, extensions.py; Sentry's integration times them), with a small
  stand-in for the execution context: its dialect, connection and cursor, no compiled statement;
- a driver error goes through the connection's own handler: it is raised as SQLAlchemy's
  exception (OperationalError, IntegrityError, ...) and a connection that was lost is
  invalidated, as for any other statement.

It uses SQLAlchemy's compiled-statement internals (`_bind_processors`, `_result_columns`,
`_handle_dbapi_exception`) and, in `connection_of`, the session's transaction's, which is why
SQLAlchemy is pinned (requirements.txt);
tests/test_direct_sql.py holds it to `Connection.execute`'s results on both databases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session, scoped_session
from sqlalchemy.orm.session import SessionTransactionState
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

_CURSOR = "direct_sql.cursor"


def connection_of(session: Session | scoped_session | Connection) -> Connection:
    """What `session.connection()` returns: the connection of the session's transaction, which
    is begun if there is none (a Connection is its own). Once the transaction holds its
    connection, this reads it from the transaction instead of going through
    `Session.connection`'s bind lookup and state checks (a publish makes six calls: 2% of its
    instructions on PostgreSQL).

    Only a session's root transaction with its one connection is read this way; anything else
    (no transaction yet, a savepoint, a transaction that failed or ended, several databases)
    goes to `Session.connection`, which begins one or raises what it raises.
    """
    if isinstance(session, Connection):
        return session
    real = session() if isinstance(session, scoped_session) else session
    transaction = real._transaction
    if (transaction is not None and transaction._parent is None
            and transaction._state is SessionTransactionState.ACTIVE):
        connections = transaction._connections  # its engine and its connection, each to one entry
        if len(connections) == 2:
            connection = next(iter(connections.values()))[0]
            if not connection.closed and not connection.invalidated:
                return connection
    return real.connection()


@dataclass
class _Compiled:
    sql: str
    positions: tuple[str, ...] | None  # bind names in order (positional paramstyles), else None
    names: tuple[tuple[str, str], ...]  # (bind name, its name in the SQL) for named paramstyles
    processors: dict[str, Callable[[Any], Any]]
    constants: dict[str, Any]  # values of binds that carry one (literal())
    defaults: tuple[tuple[str, Any], ...]  # (bind name, ColumnDefault): Python-side defaults
    result_types: tuple[Any, ...]  # a SELECT's column types
    # Their result processors, made at the first execution: some need the driver's type code.
    results: tuple[Callable[[Any], Any] | None, ...] | None = None


class DirectStatement:
    """A Core statement run straight on the driver's cursor (module docstring)."""

    def __init__(self, statement: ClauseElement):
        self.statement = statement
        self._compiled: dict[tuple, _Compiled] = {}

    def execute(self, connection: Connection, params: dict[str, Any]) -> int:
        """Run it once with `params`; the number of rows it changed."""
        compiled = self._for(connection.dialect, params)
        return self._run(connection, compiled, _driver_params(compiled, params), many=False,
                         fetch=False)[0]

    def executemany(self, connection: Connection, rows: list[dict[str, Any]]) -> None:
        """Run it once per row (one driver call; rows of the same keys); nothing without rows."""
        if not rows:
            return
        compiled = self._for(connection.dialect, rows[0])
        if len(rows) == 1:  # psycopg sends a batch in pipeline mode, which costs one row more
            self._run(connection, compiled, _driver_params(compiled, rows[0]), many=False, fetch=False)
            return
        self._run(connection, compiled, [_driver_params(compiled, row) for row in rows],
                  many=True, fetch=False)

    def first(self, connection: Connection, params: dict[str, Any]) -> tuple | None:
        """The first row of a SELECT, its values processed as SQLAlchemy's result would; None
        when there is none."""
        compiled = self._for(connection.dialect, params)
        row = self._run(connection, compiled, _driver_params(compiled, params), many=False,
                        fetch=True)[1]
        if row is None:
            return None
        assert compiled.results is not None  # made by _run
        return tuple(value if process is None else process(value)
                     for process, value in zip(compiled.results, row, strict=True))

    def _for(self, dialect: Dialect, params: dict[str, Any]) -> _Compiled:
        # An INSERT's SQL names the columns given; other statements have one form.
        key = (dialect.name, tuple(params) if getattr(self.statement, "is_insert", False) else ())
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _compile(self.statement, dialect, key[1] or None)
        return compiled

    def _run(self, connection: Connection, compiled: _Compiled, params: Any, *, many: bool,
             fetch: bool) -> tuple[int, tuple | None]:
        sql = compiled.sql
        if not connection.in_transaction():
            connection.begin()  # as Connection.execute begins one ("commit as you go")
        pooled = connection.connection
        dbapi_connection = pooled.dbapi_connection
        assert dbapi_connection is not None  # a connection in use has one
        # One cursor per driver connection, kept with it (the pool empties `info` when it
        # replaces the connection): making a psycopg cursor costs a tenth of a statement.
        info = pooled.info
        cursor = None
        try:
            cursor = info.get(_CURSOR)
            if cursor is None or cursor.connection is not dbapi_connection:
                cursor = info[_CURSOR] = dbapi_connection.cursor()
            events = connection._has_events or connection.engine._has_events
            if events:
                context = _ListenerContext(connection, cursor, many)
                for listener in connection.dispatch.before_cursor_execute:
                    sql, params = listener(connection, cursor, sql, params, context, many)
            if many:
                cursor.executemany(sql, params)
            else:
                cursor.execute(sql, params)
            if events:
                connection.dispatch.after_cursor_execute(connection, cursor, sql, params, context, many)
            # fetchall, not fetchone: a SQLite statement left unfinished keeps its read open.
            rows = cursor.fetchall() if fetch else None
            if fetch and compiled.results is None:
                compiled.results = tuple(
                    column_type._cached_result_processor(connection.dialect, description[1])
                    for column_type, description in zip(compiled.result_types, cursor.description,
                                                        strict=True))
            rowcount = cursor.rowcount
        except BaseException as exc:  # noqa: BLE001  (the connection's handler raises it)
            # As for any statement: a driver error comes out wrapped, and an interruption (a
            # worker's timeout, Ctrl-C) invalidates the connection it may have left mid-query.
            info.pop(_CURSOR, None)  # the handler closes it
            connection._handle_dbapi_exception(exc, sql, params, cursor, None)
            raise  # not reached: the handler always raises
        return rowcount, (rows[0] if rows else None)


class _ListenerContext:
    """What cursor-execute listeners get as the execution context of a direct statement: its
    connection, dialect and cursor, and no compiled statement. Listeners may keep their own
    attributes on it between the two events (Sentry's SQLAlchemy integration does)."""

    compiled = None

    def __init__(self, connection: Connection, cursor: Any, executemany: bool):
        self.connection = self.root_connection = connection
        self.dialect = connection.dialect
        self.cursor = cursor
        self.executemany = executemany


def _compile(statement: ClauseElement, dialect: Dialect, column_keys: tuple[str, ...] | None) -> _Compiled:
    compiled = statement.compile(dialect=dialect, column_keys=list(column_keys) if column_keys else None)
    assert isinstance(compiled, SQLCompiler)
    escaped: dict[str, str] = dict(compiled.escaped_bind_names or {})
    # Columns whose Python-side default (or onupdate) SQLAlchemy computes before it executes
    # the statement, when the parameters leave them out.
    defaults = tuple((column.key, column.default if compiled.isinsert else column.onupdate)
                     for column in (*compiled.insert_prefetch, *compiled.update_prefetch))
    prefetched = {name for name, _ in defaults}
    constants = {name: bind.effective_value for name, bind in compiled.binds.items()
                 if not bind.required and name not in prefetched}
    return _Compiled(
        sql=compiled.string,
        positions=tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None,
        names=tuple((name, escaped.get(name, name)) for name in compiled.bind_names.values()),
        # Sequences of processors are for tuple-valued binds, which no statement here has.
        processors=cast(dict[str, Callable[[Any], Any]], dict(compiled._bind_processors)),
        constants=constants,
        defaults=defaults,
        result_types=tuple(column.type for column in compiled._result_columns),
    )


def _driver_params(compiled: _Compiled, params: dict[str, Any]) -> Any:
    """`params` (with the statement's constant values) processed and in the driver's style."""
    values = {**compiled.constants, **params} if compiled.constants else params
    for name, default in compiled.defaults:
        if name not in params:
            if values is params:
                values = dict(params)
            values[name] = default.arg(None) if default.is_callable else default.arg
    processors = compiled.processors
    if compiled.positions is not None:
        return tuple(processors[name](values[name]) if name in processors else values[name]
                     for name in compiled.positions)
    return {in_sql: processors[name](values[name]) if name in processors else values[name]
            for name, in_sql in compiled.names}
