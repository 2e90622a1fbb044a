"""Idempotency keys: a repeated request with the same key and body gets the first answer.

The key is reserved (a row with no response yet) in its own transaction before the work runs, so
two concurrent repeats cannot both do the work: the unique index lets one in and the other is told
the first is still running (409). A request that ends in an error releases its key, so the client
can send it again after fixing it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from .errors import Conflict, InvalidInput
from .models import IdempotencyRecord, utcnow

MAX_KEY_LENGTH = 200
# A reservation with no answer after this long belongs to a request whose process died.
ABANDONED_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class Replay:
    """The stored first answer to a repeated request."""

    status: int
    body: Any


def request_fingerprint(endpoint: str, body: Any) -> str:
    """A hash of what was asked: the endpoint and the canonical JSON body."""
    canonical = json.dumps({"endpoint": endpoint, "body": body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def reserve(db, user_id: uuid.UUID, key: str, endpoint: str, fingerprint: str) -> Replay | uuid.UUID:
    """Reserve `key` for this request (commits): the record id to finish, or the stored Replay.

    Raises Conflict when the key was used with another request, or its first request is still
    running.
    """
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput.field("Idempotency-Key", f"needs 1 to {MAX_KEY_LENGTH} characters")
    for _ in range(3):
        existing = db.session.scalar(select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key))
        if existing is not None:
            if existing.request_hash != fingerprint or existing.endpoint != endpoint:
                raise Conflict("this Idempotency-Key was already used with a different request")
            if existing.response_status is None:
                if existing.created_at < utcnow() - ABANDONED_AFTER:
                    # Its process died between reserving and answering: let this one take over.
                    db.session.delete(existing)
                    db.session.commit()
                    continue
                raise Conflict("the first request with this Idempotency-Key is still running; "
                               "repeat it in a moment")
            return Replay(existing.response_status, existing.response_body)
        record = IdempotencyRecord(user_id=user_id, key=key, endpoint=endpoint, request_hash=fingerprint)
        db.session.add(record)
        try:
            db.session.commit()
            return record.id
        except IntegrityError:
            db.session.rollback()  # a concurrent twin got in first: read its record
    raise Conflict("the first request with this Idempotency-Key is still running")


def finish(db, record_id: uuid.UUID, status: int, body: Any) -> None:
    """Store the answer to replay (commits)."""
    record = db.session.get(IdempotencyRecord, record_id)
    record.response_status = status
    record.response_body = body
    db.session.commit()


def release(db, record_id: uuid.UUID) -> None:
    """Forget a reservation whose request failed, so the key can be used again (commits)."""
    db.session.rollback()
    db.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))
    db.session.commit()
