"""Keyset pagination: newest first, an opaque cursor instead of OFFSET."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import Session

from .errors import InvalidInput

T = TypeVar("T")


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
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        moment, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        moment, row_id = datetime.fromisoformat(moment), uuid.UUID(row_id)
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise InvalidInput.field("cursor", "is not a cursor this server issued") from exc
    if moment.tzinfo is None:  # ours always carry an offset; a naive time cannot be compared
        raise InvalidInput.field("cursor", "is not a cursor this server issued")
    return moment, row_id


def keyset_page(
    session: Session, query: Select, time_col, id_col, cursor: str | None, limit: int
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
