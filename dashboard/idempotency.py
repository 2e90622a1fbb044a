"""Idempotency keys: a repeated request with the same key and body gets the first answer, and
never does the work twice.

The key is reserved (a row with no response yet) in its own transaction before the work runs, so
two concurrent repeats cannot both do the work: the unique index lets one in and the other is told
the first is still running (409). The reservation is linked to the publish log or batch the
request creates *in the same transaction* as that log (see `link_created_work`), so:

- a repeat of a request that created its log but never answered (its process was killed, say)
  is answered from that log's state (`InFlight`), never by publishing again;
- an unanswered reservation with no link created nothing: once ABANDONED_AFTER has passed it may
  be taken over, and if its first request was only slow, its link (a conditional UPDATE) then
  fails and its work is rolled back.

A request that ends in an error releases its key (unless it already created work), so the client
can send it again after fixing it. Keys expire after IDEMPOTENCY_KEY_TTL_SECONDS: a repeat after
that is a new request, and the sweep deletes expired keys.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from flask import current_app
from sqlalchemy import Table, bindparam, delete, event, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from .errors import AlreadySubmitted, Conflict, InvalidInput
from .models import IdempotencyRecord, PublishBatch, utcnow

MAX_KEY_LENGTH = 200
T = TypeVar("T")
# An unanswered reservation that created nothing after this long belongs to a request whose
# process died before creating its work: the key may be used again.
ABANDONED_AFTER = timedelta(minutes=10)
# session.info key of the reservation the current request holds.
_ACTIVE = "idempotency_record_id"


@dataclass(frozen=True)
class Replay:
    """The stored first answer to a repeated request."""

    status: int
    body: Any


@dataclass(frozen=True)
class InFlight:
    """A repeat of a request that created its work but never stored an answer: the caller
    answers from the state of what it created."""

    record_id: uuid.UUID
    publish_log_id: uuid.UUID | None
    batch_id: uuid.UUID | None

    @property
    def log_id(self) -> uuid.UUID:
        """The publish log the first request created (its endpoint creates logs, not batches)."""
        if self.publish_log_id is None:
            raise AlreadySubmitted("this Idempotency-Key was already used with a different request",
                                   still_running=False)
        return self.publish_log_id

    @property
    def created_batch_id(self) -> uuid.UUID:
        """The batch the first request created (its endpoint creates batches)."""
        if self.batch_id is None:
            raise AlreadySubmitted("this Idempotency-Key was already used with a different request",
                                   still_running=False)
        return self.batch_id


def request_fingerprint(endpoint: str, body: Any) -> str:
    """A hash of what was asked: the endpoint and the canonical JSON body."""
    canonical = json.dumps({"endpoint": endpoint, "body": body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _unlinked(record_id: uuid.UUID):
    return (IdempotencyRecord.id == record_id, IdempotencyRecord.response_status.is_(None),
            IdempotencyRecord.publish_log_id.is_(None), IdempotencyRecord.batch_id.is_(None))


def reserve(db, user_id: uuid.UUID, key: str, endpoint: str, fingerprint: str,
            ttl_seconds: float) -> Replay | InFlight | uuid.UUID:
    """Reserve `key` for this request (commits): the record id to finish, the stored Replay, or
    InFlight when the first request created its work and never answered.

    Raises AlreadySubmitted (a Conflict) when the key was used with another request, or its first request is still
    running and has created nothing yet.
    """
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput.field("Idempotency-Key", f"needs 1 to {MAX_KEY_LENGTH} characters")
    for _ in range(3):
        now = utcnow()
        existing = db.session.scalar(select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key))
        if existing is not None and existing.created_at < now - timedelta(seconds=ttl_seconds):
            # Expired: a repeat this late is a new request.
            db.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == existing.id))
            db.session.commit()
            continue
        if existing is not None:
            if existing.request_hash != fingerprint or existing.endpoint != endpoint:
                raise AlreadySubmitted("this Idempotency-Key was already used with a different request",
                                       still_running=False)
            if existing.response_status is not None:
                return Replay(existing.response_status, existing.response_body)
            if existing.publish_log_id is not None or existing.batch_id is not None:
                result = InFlight(existing.id, existing.publish_log_id, existing.batch_id)
                db.session.rollback()
                return result
            if existing.created_at < now - ABANDONED_AFTER:
                # Its process died before creating anything: let this one take over. Only while
                # it is still unlinked: a slow first request that links meanwhile keeps it.
                db.session.execute(delete(IdempotencyRecord).where(*_unlinked(existing.id)))
                db.session.commit()
                continue
            raise AlreadySubmitted("the first request with this Idempotency-Key is still running; "
                                   "repeat it in a moment", still_running=True)
        record = IdempotencyRecord(user_id=user_id, key=key, endpoint=endpoint, request_hash=fingerprint)
        db.session.add(record)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()  # a concurrent twin got in first: read its record
            continue
        db.session.info[_ACTIVE] = record.id
        return record.id
    raise AlreadySubmitted("the first request with this Idempotency-Key is still running", still_running=True)


@event.listens_for(Session, "after_flush")
def _link_created_batch(session, _flush_context):
    """A batch is created through the session: link the reservation when it is flushed."""
    batch = next((obj for obj in session.new if isinstance(obj, PublishBatch)), None)
    if batch is not None:
        link_created_work(session, batch_id=batch.id)


def _link(column: str):
    table = cast(Table, IdempotencyRecord.__table__)
    return update(table).where(
        table.c.id == bindparam("record_id"), table.c.response_status.is_(None),
        table.c.publish_log_id.is_(None), table.c.batch_id.is_(None),
    ).values({column: bindparam("work_id", type_=table.c[column].type)})


# Built once: on SQLite the link is written inside the write lock (after the work's first write).
_LINK_LOG, _LINK_BATCH = _link("publish_log_id"), _link("batch_id")


def link_created_work(session, *, batch_id: uuid.UUID | None = None,
                      publish_log_id: uuid.UUID | None = None) -> None:
    """Link the request's reservation, if it holds one, to the first batch or publish log it
    creates, in the same transaction: the work cannot exist without the link, so a repeat always
    finds it. Called as the work is written (publishing.service.insert_log for a log)."""
    record_id = session.info.get(_ACTIVE)
    if record_id is None:
        return
    statement = _LINK_BATCH if batch_id is not None else _LINK_LOG
    work_id = batch_id if batch_id is not None else publish_log_id
    linked = session.connection().execute(statement, {"record_id": record_id, "work_id": work_id}).rowcount
    session.info.pop(_ACTIVE, None)
    if linked != 1:
        raise Conflict("this request's Idempotency-Key was taken over by a later repeat; "
                       "nothing was done")


def finish(db, record_id: uuid.UUID, status: int, body: Any) -> None:
    """Store the answer to replay (commits)."""
    db.session.info.pop(_ACTIVE, None)
    db.session.execute(update(IdempotencyRecord).where(IdempotencyRecord.id == record_id)
                       .values(response_status=status, response_body=body))
    db.session.commit()


def release(db, record_id: uuid.UUID) -> None:
    """Forget a reservation whose request failed, so the key can be used again (commits); one
    that created work is kept, and repeats answer from that work's state."""
    db.session.info.pop(_ACTIVE, None)
    try:
        db.session.rollback()
        db.session.execute(delete(IdempotencyRecord).where(*_unlinked(record_id)))
        db.session.commit()
    except SQLAlchemyError:
        # The database is gone (the request's own error says so). A key left reserved answers
        # repeats from the log it created, or frees itself after ABANDONED_AFTER.
        db.session.rollback()


def delete_expired(db, ttl_seconds: float, now: datetime | None = None) -> int:
    """Delete keys older than the TTL (the sweep's job; the caller commits); how many."""
    cutoff = (now or utcnow()) - timedelta(seconds=ttl_seconds)
    return db.session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff)
        .execution_options(synchronize_session=False)
    ).rowcount


def submit_once(db, user_id: uuid.UUID, key: str | None, endpoint: str, body: Any,
                run: Callable[[], T], answer: Callable[[T], tuple[int, Any] | None],
                in_flight: Callable[[InFlight], T] | None = None) -> T | Replay:
    """Run `run()` at most once per (user, key, endpoint): the one idempotent submit of the
    pages' forms and the API alike.

    A repeat with the same key and body gets the stored first answer (a Replay) and runs
    nothing. A repeat whose first request created its work (a publish log or batch) but never
    answered (it was killed, or is still in its platform call) gets `in_flight(InFlight)`, an
    answer from that work's state, never a second run; without `in_flight` it is refused. The
    same key with another body, or while the first request still runs and has created nothing,
    raises AlreadySubmitted. `answer(result)` says what to store, (status, JSON body), or None
    when the request was refused, which releases the key so the corrected request can be sent
    again (so does an exception). Keys live IDEMPOTENCY_KEY_TTL_SECONDS. Without a key, `run()`
    simply runs.
    """
    if key is None:
        return run()
    reserved = reserve(db, user_id, key, endpoint, request_fingerprint(endpoint, body),
                       current_app.config["IDEMPOTENCY_KEY_TTL_SECONDS"])
    if isinstance(reserved, Replay):
        return reserved
    if isinstance(reserved, InFlight):
        if in_flight is None:
            raise AlreadySubmitted("the first request with this Idempotency-Key is still running; "
                                   "repeat it in a moment", still_running=True)
        return in_flight(reserved)
    try:
        result = run()
    except BaseException:
        release(db, reserved)
        raise
    stored = answer(result)
    if stored is None:
        release(db, reserved)
    else:
        finish(db, reserved, *stored)
    return result
