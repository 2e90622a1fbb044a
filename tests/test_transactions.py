"""Transactions as the engine runs them: a read blocks no writer, and a transaction that read
before another one wrote can still write (SQLite: no "database is locked").

The other writer here refuses to wait for a lock at all (SQLite busy_timeout 0, PostgreSQL
lock_timeout 1 ms), so a lock held by the reading transaction would fail it at once.
"""

from __future__ import annotations

import os
import signal
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import OperationalError

from dashboard import users
from dashboard.accounts import create_account
from dashboard.errors import Conflict, InvalidInput
from dashboard.extensions import take_write_lock
from dashboard.models import ApiToken, Clip, LedgerEvent
from dashboard.publishing import background
from dashboard.publishing.models import PublishRequest
from dashboard.publishing.service import publish_clip
from dashboard.schemas import AccountIn

from outage import refusal_of_a_write_without_waiting, write_without_waiting


def test_a_read_in_progress_blocks_no_writer_and_can_write_afterwards(db, make_clip):
    make_clip(title="first")
    db.session.remove()
    # A page's read: its transaction stays open (as while a template renders).
    assert db.session.scalar(select(func.count()).select_from(Clip)) == 1

    write_without_waiting(db, "written meanwhile")

    # The reader now writes: on SQLite its lock is taken afresh, not by upgrading the old read.
    make_clip(title="written by the reader")
    assert sorted(db.session.scalars(select(Clip.title))) == [
        "first", "written by the reader", "written meanwhile"]


def test_take_write_lock_holds_until_the_commit(db, make_clip):
    """What a locked transaction reads stays true until it commits: a writer that will not wait
    is refused meanwhile on SQLite (PostgreSQL locks rows instead: lock_account)."""
    make_clip(title="first")
    db.session.remove()
    take_write_lock(db.session)
    count = db.session.scalar(select(func.count()).select_from(Clip))
    refused = refusal_of_a_write_without_waiting(db, "too early")
    db.session.commit()
    if db.engine.dialect.name == "sqlite":
        assert refused is not None and "locked" in str(refused)
        assert count == 1 and db.session.scalar(select(func.count()).select_from(Clip)) == 1
    else:
        assert refused is None


def test_a_clip_added_in_an_open_transaction_holds_up_no_other_clip(db):
    """An upload adds its clip, then stores its video before it commits: meanwhile another clip
    goes in at once on PostgreSQL (home's clip count moves at COMMIT, not at the INSERT); on
    SQLite writers take turns anyway. The count is right either way."""
    from dashboard import stats

    db.session.add(Clip(title="uploading", media="https://cdn.example.com/big.mp4"))
    db.session.flush()
    refused = refusal_of_a_write_without_waiting(db, "added meanwhile")
    db.session.commit()
    if db.engine.dialect.name == "sqlite":
        assert refused is not None and "locked" in str(refused)
        assert stats.counts(db).clips == 1
    else:
        assert refused is None
        assert stats.counts(db).clips == 2


def test_publishing_after_a_read_of_an_older_snapshot_succeeds(db, make_clip):
    """The API's token check reads first; another publish commits; this one still publishes."""
    clip = make_clip()
    clip_id = clip.id
    db.session.remove()
    db.session.get(Clip, clip_id)  # the read that starts the request's transaction
    write_without_waiting(db, "another request's write")

    result = publish_clip(db, PublishRequest(clip_id=clip_id, platform="tiktok",
                                             metadata={"caption": "after a read"}))

    assert result.success is True


def test_a_refusing_service_leaves_no_transaction_open(db, make_account, make_clip):
    """Services roll back their own failed work (dashboard/transactions.py): a view need not,
    and on SQLite no write lock outlives the refusal."""
    make_account("instagram", "taken")
    with pytest.raises(Conflict):
        create_account(db, AccountIn(platform="instagram", handle="taken"))
    assert not db.session().in_transaction()

    clip_id = make_clip().id
    with pytest.raises(InvalidInput):
        background.create_batch(db, clip_id, [background.Target("instagram", None, "x" * 3000, [])])
    assert not db.session().in_transaction()


def test_a_revocation_that_fails_midway_revokes_nothing(db, make_user, monkeypatch):
    """A failure inside revoke_token or revoke_all_tokens (here the ledger's, on the last
    token) rolls back the tokens revoked before it: the request's session, still usable,
    commits nothing half-done."""
    user_id = make_user("editor").id
    token_ids = [users.create_token(db, user_id, name).token.id for name in ("ci", "laptop")]
    events_before = db.session.scalar(select(func.count()).select_from(LedgerEvent))
    real_record_event = users.record_event

    def ledger_fails_on(nth: int):
        calls = []

        def record_event(session, *args, **kwargs):
            calls.append(args)
            if len(calls) == nth:
                raise RuntimeError("the ledger is down")
            return real_record_event(session, *args, **kwargs)

        return record_event

    monkeypatch.setattr(users, "record_event", ledger_fails_on(2))
    with pytest.raises(RuntimeError):
        users.revoke_all_tokens(db, user_id)
    assert not db.session().in_transaction()
    monkeypatch.setattr(users, "record_event", ledger_fails_on(1))
    with pytest.raises(RuntimeError):
        users.revoke_token(db, user_id, token_ids[0])
    assert not db.session().in_transaction()

    db.session.commit()  # what the rest of the request would commit
    db.session.expire_all()
    assert db.session.scalars(select(ApiToken.revoked_at)).all() == [None, None]
    assert db.session.scalar(select(func.count()).select_from(LedgerEvent)) == events_before
    monkeypatch.setattr(users, "record_event", real_record_event)
    assert users.revoke_all_tokens(db, user_id) == 2


def _writer_lock_held(db) -> bool:
    """Whether a writer of this process is at the head of SQLite's writers' queue
    (dashboard/extensions.py)."""
    from dashboard.extensions import _writer_queue_of

    if db.engine.dialect.name != "sqlite":
        return False
    queue = _writer_queue_of(db.engine.url.database)
    return queue is not None and queue.locked()


def _read_then_write_from_threads(engine, name: str, threads: int) -> list[str]:
    """`threads` threads each read then write a clip, ten times, each time in its own
    transaction; returns the errors they met."""
    errors: list[str] = []

    def writer(n: int) -> None:
        try:
            for i in range(10):
                with engine.connect() as conn:
                    conn.execute(select(func.count()).select_from(Clip))  # a read first
                    conn.execute(Clip.__table__.insert().values(_new_clip_row(f"{name}{n}-{i}")))
                    conn.commit()
        except Exception as exc:  # noqa: BLE001  (reported by the caller)
            errors.append(repr(exc))

    running = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    return errors


def test_writers_of_one_process_take_turns_and_every_write_lands(db):
    """Sixteen threads, each reading then writing in its own transactions: every write lands and
    none meets "database is locked" (on SQLite they queue on the process's writer lock)."""
    assert _read_then_write_from_threads(db.engine, "w", 16) == []
    assert db.session.scalar(select(func.count()).select_from(Clip)) == 160
    assert not _writer_lock_held(db)


def test_no_end_of_a_write_keeps_the_writer_lock(db, make_clip):
    """Commit, rollback, a failed flush, a session closed mid-write, a connection returned to
    the pool mid-write or invalidated: after each, another writer that will not wait writes."""
    from sqlalchemy.exc import IntegrityError

    clip_id = make_clip(title="first").id
    db.session.remove()

    def new_clip(title: str) -> Clip:
        return Clip(id=uuid.uuid4(), title=title, description="", media="https://cdn.example.com/y.mp4")

    def committed():
        db.session.add(new_clip("committed"))
        db.session.commit()

    def rolled_back():
        db.session.add(new_clip("rolled back"))
        db.session.flush()
        db.session.rollback()

    def failed_flush():
        db.session.add(Clip(id=clip_id, title="a duplicate id", description="",
                            media="https://cdn.example.com/z.mp4"))
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()

    def closed_mid_write():
        db.session.add(new_clip("never committed"))
        db.session.flush()
        db.session.close()

    def returned_mid_write():
        conn = db.engine.connect()
        conn.execute(Clip.__table__.insert().values(
            id=uuid.uuid4(), title="never committed either", description="",
            media="https://cdn.example.com/w.mp4"))
        conn.close()

    def invalidated_mid_write():
        with db.engine.connect() as conn:
            conn.execute(text("DELETE FROM clips WHERE id IS NULL"))  # takes the lock
            conn.invalidate()  # as after a lost connection
            conn.rollback()

    for ending in (committed, rolled_back, failed_flush, closed_mid_write, returned_mid_write,
                   invalidated_mid_write):
        ending()
        assert not _writer_lock_held(db), ending.__name__
        write_without_waiting(db, f"after {ending.__name__}")
        db.session.remove()

    titles = set(db.session.scalars(select(Clip.title)))
    assert {"first", "committed"} <= titles
    assert not titles & {"rolled back", "never committed", "never committed either"}


def test_a_forked_child_starts_with_the_writer_lock_free(db, make_clip):
    """A process forked while one of its threads writes (a server or worker forking after using
    the database) can write at once instead of waiting for a lock no thread of it will release."""
    import os

    make_clip(title="first")
    db.session.remove()
    take_write_lock(db.session)
    pid = os.fork()
    if pid == 0:  # the child: report by exit status only
        os._exit(1 if _writer_lock_held(db) else 0)
    _, status = os.waitpid(pid, 0)
    held_here = _writer_lock_held(db)
    db.session.commit()
    assert os.waitstatus_to_exitcode(status) == 0
    assert held_here == (db.engine.dialect.name == "sqlite")


# Writers of other processes (the other gunicorn worker, queue workers, the CLI) --------------------

def _new_clip_row(title: str) -> dict:
    return {"id": uuid.uuid4(), "title": title, "description": "",
            "media": "https://cdn.example.com/p.mp4"}


@contextmanager
def _writer_in_another_process(db, *, killed: bool = False) -> Iterator[None]:
    """A forked child that has begun a write (it holds SQLite's write lock) and holds it through
    the block, then commits, or with `killed` dies holding it."""
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its own engine, never the parent's pooled connections
        status = 1
        try:
            engine = create_engine(db.engine.url)
            with engine.connect() as conn:
                conn.execute(Clip.__table__.insert().values(_new_clip_row("from the child")))
                os.write(ready_w, b"1")
                os.read(done_r, 1)
                conn.commit()
            status = 0
        finally:
            os._exit(status)
    os.close(ready_w)
    os.close(done_r)
    try:
        assert os.read(ready_r, 1) == b"1", "the child could not write"
        yield
    finally:
        if killed:
            os.kill(pid, signal.SIGKILL)
        os.write(done_w, b"1")
        os.waitpid(pid, 0)
        os.close(ready_r)
        os.close(done_w)


def _writers_file_locked(db) -> bool:
    """Whether a process holds the file lock that writers of the database queue on."""
    import fcntl

    fd = os.open(f"{os.path.realpath(db.engine.url.database)}-writer.lock", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases the lock if this took it
    return False


def _write_waiting_at_most(db, busy_timeout_ms: int, title: str) -> None:
    """Add a clip through a connection that waits at most `busy_timeout_ms` for SQLite's lock."""
    with db.engine.connect() as conn:
        raw = conn.connection.driver_connection
        raw.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        try:
            conn.execute(Clip.__table__.insert().values(_new_clip_row(title)))
            conn.commit()
        finally:
            conn.rollback()
            raw.execute("PRAGMA busy_timeout=30000")


@pytest.fixture
def sqlite_only(db):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write lock and its writers' queue")


@pytest.mark.parametrize("busy_timeout_ms", [0, 300])
def test_a_writer_of_another_process_holding_the_lock_fails_others_after_their_busy_timeout(
        db, sqlite_only, busy_timeout_ms):
    """Not a hang in the writers' queue: "database is locked", at once with busy timeout 0."""
    with _writer_in_another_process(db):
        assert _writers_file_locked(db)  # the child queued there: ours wait there, not in SQLite
        with pytest.raises(OperationalError, match="database is locked"):
            _write_waiting_at_most(db, busy_timeout_ms, "while the child writes")
        assert not _writer_lock_held(db)
    _write_waiting_at_most(db, 0, "after the child")
    titles = set(db.session.scalars(select(Clip.title)))
    assert {"from the child", "after the child"} <= titles
    assert "while the child writes" not in titles


def test_a_writer_whose_process_died_leaves_the_lock_free(db, sqlite_only):
    with _writer_in_another_process(db, killed=True):
        pass
    _write_waiting_at_most(db, 0, "after the child died")
    titles = set(db.session.scalars(select(Clip.title)))
    assert "after the child died" in titles and "from the child" not in titles


def test_writers_of_two_processes_take_turns_and_every_write_lands(db):
    """Eight threads in each of two processes, each reading then writing in its own
    transactions: every write lands and none meets "database is locked"."""
    url = db.engine.url
    db.session.remove()
    db.engine.dispose()  # the child must not share the parent's pooled connections

    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            status = 1 if _read_then_write_from_threads(create_engine(url), "child", 8) else 0
        finally:
            os._exit(status)
    errors = _read_then_write_from_threads(db.engine, "parent", 8)
    _, status = os.waitpid(pid, 0)

    assert errors == []
    assert os.waitstatus_to_exitcode(status) == 0
    assert db.session.scalar(select(func.count()).select_from(Clip)) == 160
    assert not _writer_lock_held(db)
