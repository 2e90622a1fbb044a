"""A TCP proxy in front of a real database server that a test can cut and restore: the way to
take PostgreSQL "away" from the app without touching the server other tests share; a SQLite
database whose lock another writer holds; and a writer that will not wait for a lock."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def write_without_waiting(db, title: str) -> None:
    """Add a clip through a connection of its own that never waits for a lock (raises the
    driver's error when another transaction holds one it needs)."""
    from sqlalchemy import text

    from dashboard.models import Clip

    with db.engine.connect() as other:
        if other.dialect.name == "sqlite":
            other.connection.driver_connection.execute("PRAGMA busy_timeout=0")
        else:
            other.execute(text("SET lock_timeout = '1ms'"))
        other.execute(Clip.__table__.insert().values(
            id=uuid.uuid4(), title=title, description="", media="https://cdn.example.com/x.mp4"))
        other.commit()
        if other.dialect.name == "sqlite":
            other.connection.driver_connection.execute("PRAGMA busy_timeout=30000")


def refusal_of_a_write_without_waiting(db, title: str) -> Exception | None:
    """The error `write_without_waiting` met, or None when it wrote."""
    try:
        write_without_waiting(db, title)
    except Exception as exc:  # noqa: BLE001  (the driver's error, whatever its class)
        return exc
    return None


@contextmanager
def locked_sqlite(path: Path) -> Iterator[Callable[[], str]]:
    """A SQLite database at `path` whose write lock another connection holds; yields `write()`,
    which tries to write to it and raises a real "database is locked" at once."""
    import sqlite3

    from sqlalchemy import create_engine, event, text

    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    # Give up at once instead of after the app's 30 s busy timeout (runs after the app's hook).
    event.listen(engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA busy_timeout=0"))

    def write() -> str:
        with engine.connect() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
        return "written"

    try:
        yield write
    finally:
        holder.close()
        engine.dispose()


class TcpProxy:
    """Forwards 127.0.0.1:<port> to (host, port). `cut()` drops every open connection and
    refuses new ones (accepted, then closed at once) until `restore()`."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def cut(self):
        """The database is gone: every connection drops, new ones are refused."""
        self.up = False
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def restore(self):
        self.up = True

    def close(self):
        self._closed = True
        self.cut()
        self.listener.close()


class DatabaseOutage:
    """Takes the test's real database away from the app and gives it back.

    PostgreSQL: the app connects through a TcpProxy (use `uri` in the app's config), and `cut()`
    drops its connections. SQLite: `cut()` closes the app's pooled connections and moves the
    database's folder away, so the next connection cannot open the file.
    """

    def __init__(self, database_uri: str):
        from urllib.parse import urlsplit, urlunsplit

        self.database_uri = database_uri
        self.sqlite = database_uri.startswith("sqlite")
        self.proxy = None
        self.uri = database_uri
        if not self.sqlite:
            parts = urlsplit(database_uri)
            self.proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
            netloc = f"{parts.username or 'postgres'}@127.0.0.1:{self.proxy.port}"
            self.uri = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    def _folders(self):
        from pathlib import Path

        folder = Path(self.database_uri[len("sqlite:///"):]).parent
        return folder, folder.with_name(folder.name + "-away")

    def cut(self):
        from dashboard.extensions import db

        db.session.remove()  # the test's own transaction must not keep a connection alive
        if self.proxy is not None:
            self.proxy.cut()
            return
        db.engine.dispose()
        here, away = self._folders()
        here.rename(away)

    def restore(self):
        if self.proxy is not None:
            self.proxy.restore()
            return
        here, away = self._folders()
        if away.exists():
            away.rename(here)

    def close(self):
        self.restore()
        if self.proxy is not None:
            self.proxy.close()

    def direct_engine(self):
        """An engine on the real database, around the outage (PostgreSQL: not via the proxy)."""
        from sqlalchemy import create_engine

        from dashboard.config import normalise_database_url

        return create_engine(normalise_database_url(self.database_uri))


def outage_fixtures(**settings):
    """(outage, app_config, database_outage) fixtures for a test module: `database_outage` is the
    one tests use; it gives the database back before the app's teardown empties the tables."""
    import pytest

    from conftest import base_config

    @pytest.fixture
    def outage(database_uri):
        made = DatabaseOutage(database_uri)
        yield made
        made.close()

    @pytest.fixture
    def app_config(outage, database_uri):
        return {**base_config(database_uri), **settings, "SQLALCHEMY_DATABASE_URI": outage.uri}

    @pytest.fixture
    def database_outage(app, outage):
        yield outage
        outage.restore()

    return outage, app_config, database_outage
