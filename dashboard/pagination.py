"""Keyset pagination: newest first, an opaque cursor instead of OFFSET."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import Session, scoped_session

from .errors import InvalidInput
from .local_times import time_in_range

T = TypeVar("T")

# Callers pass Flask-SQLAlchemy's db.session (a scoped_session) or a plain Session.
DbSession = Session | scoped_session


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results and the cursor of the next page (None on the last)."""

    items: list[T]
    next_cursor: str | None


def encode_cursor(moment: datetime, row_id: uuid.UUID) -> str:
    """An opaque cursor that resumes a listing after the row (moment, row_id)."""
    raw = json.dumps([moment.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Parse a cursor made by `encode_cursor`; a damaged one is invalid input on `cursor`."""
    refused = InvalidInput.field("cursor", "is not a cursor this server issued")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode()))
        # Ours are exactly [ISO time with an offset, UUID], both strings; anything else (nested
        # arrays, numbers, objects) is refused before it reaches a parser or the database.
        if not (isinstance(decoded, list) and len(decoded) == 2
                and all(isinstance(part, str) for part in decoded)):
            raise refused
        moment, row_id = datetime.fromisoformat(decoded[0]), uuid.UUID(decoded[1])
        # A naive time cannot be compared; one at the ends of the calendar overflows in UTC.
        if moment.tzinfo is None or not time_in_range(moment):
            raise refused
    except (ValueError, TypeError, OverflowError, RecursionError, json.JSONDecodeError) as exc:
        raise refused from exc
    return moment, row_id


def keyset_page(
    session: DbSession, query: Select, time_col, id_col, cursor: str | None, limit: int
) -> Page:
    """Run `query` ordered by (time, id) descending, after `cursor`, returning `limit` rows."""
    if cursor:
        moment, row_id = decode_cursor(cursor)
        # The plain `<=` bound is redundant for the result but lets the index seek straight to
        # the cursor: with the OR alone SQLite and PostgreSQL walk every newer entry first, so
        # page 10,000 of the ledger cost 100x page 1 (bench: 240 ms vs 2.5 ms at 3M events).
        query = query.where(
            time_col <= moment,
            or_(time_col < moment, and_(time_col == moment, id_col < row_id)),
        )
    rows = list(session.scalars(query.order_by(time_col.desc(), id_col.desc()).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(
            getattr(last, time_col.key), getattr(last, id_col.key)
        )
    return Page(rows, next_cursor)
