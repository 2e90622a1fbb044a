"""The SocialSyncLedger: an append-only record of every step, browsed and filtered by managers.

`record_event` writes an event in the caller's transaction, so a state change and the events that
describe it commit together or not at all.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, insert, select

from .direct_sql import DirectStatement, connection_of
from .errors import NotFound
from .models import Clip, LedgerEvent, SocialAccount, User, platform_name, utcnow
from .pagination import DbSession, Page, keyset_page

# What the ledger filter offers. Add a type here when a service starts recording it.
EVENT_TYPES = (
    "account_created",
    "account_credentials_removed",
    "account_credentials_set",
    "account_disconnected",
    "account_linked",
    "account_needs_credentials",
    "account_needs_reconnect",
    "account_token_refreshed",
    "account_updated",
    "api_token_created",
    "api_token_revoked",
    "clip_cover_set",
    "clip_created",
    "clip_deleted",
    "clip_media_replaced",
    "clip_media_uploaded",
    "clip_updated",
    "credentials_rotated",
    "publish_batch_created",
    "publish_cancelled",
    "publish_deferred",
    "publish_failed",
    "publish_interrupted",
    "publish_late_answer",
    "publish_marked_published",
    "publish_provider_fallback",
    "publish_provider_ready",
    "publish_queued",
    "publish_reconciled",
    "publish_rescheduled",
    "publish_restarted",
    "publish_retry_scheduled",
    "publish_scheduled",
    "publish_started",
    "publish_step",
    "publish_step_interrupted",
    "publish_successful",
    "publish_unconfirmed",
    "user_created",
    "user_deactivated",
    "user_password_changed",
    "user_reactivated",
    "user_role_changed",
    "user_timezone_changed",
)
ENTITY_TYPES = ("clip", "account", "user", "system")
# Event types whose words are not simply the type's own ("api_token_created" -> "API token created").
_EVENT_WORDS = {
    "api_token_created": "API token created",
    "api_token_revoked": "API token revoked",
    "publish_successful": "Published",
    "publish_marked_published": "Marked as published",
    "publish_provider_ready": "Provider client used",
    "publish_provider_fallback": "Fell back to the simulator",
    "publish_late_answer": "Late answer from the platform",
    "publish_step": "Publish step done",
    "account_linked": "Account connected",
    "user_timezone_changed": "User time zone changed",
}
# Metadata that names a person: shown to admins only (the ledger is read by every role).
PERSONAL_KEYS = ("email",)


def event_label(event_type: str) -> str:
    """An event type in words, as pages show it (`publish_retry_scheduled` -> "Publish retry
    scheduled"); the raw type stays the filter's value and the label's hover text."""
    return _EVENT_WORDS.get(event_type) or event_type.replace("_", " ").capitalize()


def entity_names(session: DbSession, events: list[LedgerEvent], *, show_emails: bool,
                 me: uuid.UUID | None = None) -> dict[uuid.UUID, str]:
    """What pages call each event's entity: a clip's title, an account's handle and platform, a
    user's email (to admins; to others only "you" or the user's role), one query per type."""
    ids: dict[str, set[uuid.UUID]] = {}
    for event in events:
        ids.setdefault(event.entity_type, set()).add(event.entity_id)
    names: dict[uuid.UUID, str] = {}
    if ids.get("clip"):
        names |= dict(session.execute(select(Clip.id, Clip.title).where(Clip.id.in_(ids["clip"]))).all())
    if ids.get("account"):
        for account in session.scalars(select(SocialAccount).where(SocialAccount.id.in_(ids["account"]))):
            names[account.id] = f"@{account.handle} ({platform_name(account.platform)})"
    if ids.get("user"):
        for user in session.scalars(select(User).where(User.id.in_(ids["user"]))):
            role = user.role.capitalize()
            if show_emails:
                names[user.id] = user.email
            else:
                names[user.id] = f"You ({role})" if user.id == me else f"A user ({role})"
    for event in events:  # a deleted clip keeps the title its deletion recorded
        title = (event.event_metadata or {}).get("title")
        if event.entity_type == "clip" and event.entity_id not in names and title:
            names[event.entity_id] = title
    return names


def visible_metadata(metadata: dict[str, Any] | None, *, show_emails: bool) -> dict[str, Any]:
    """An event's metadata as a page may show it: without people's emails unless `show_emails`."""
    metadata = dict(metadata or {})
    if not show_emails:
        for key in PERSONAL_KEYS:
            if key in metadata:
                metadata[key] = "(shown to admins only)"
    return metadata

# Keys that must never reach the ledger, whatever a caller passes.
_FORBIDDEN_KEYS = {"credentials", "password", "token", "access_token", "client_secret", "secret",
                   "refresh_token", "code_verifier", "authorization_code"}

_stamp_lock = threading.Lock()
_last_stamp: datetime | None = None


# The most a new event time is moved past the clock to stay after the previous one.
_MAX_BUMP = timedelta(seconds=1)
_TICK = timedelta(microseconds=1)


def _event_times(count: int) -> list[datetime]:
    """`count` current UTC times, each strictly later than the one before, the first strictly
    later than the previous event's in this process.

    Events recorded in one transaction are microseconds apart and the clock may hand two of them
    the same instant; the ledger lists by time, so a tie would show a timeline out of order.
    Only a tie or a tiny step back is bumped: after the clock was set back further (an NTP step,
    a test travelling in time) the clock's time is used again, or every later event of this
    process would carry the old, later time and sort after events other processes record.
    """
    global _last_stamp
    with _stamp_lock:
        now = utcnow()
        if _last_stamp is not None and now <= _last_stamp < now + _MAX_BUMP:
            now = _last_stamp + _TICK
        times = [now]
        for _ in range(count - 1):
            now += _TICK
            times.append(now)
        _last_stamp = now
        return times


# Events are only ever inserted: a Core INSERT, with none of the ORM's unit of work per event.
_INSERT_EVENT = DirectStatement(insert(cast(Table, LedgerEvent.__table__)))


def record_event(
    session: DbSession,
    event_type: str,
    entity_type: str,
    entity_id: uuid.UUID,
    metadata: dict[str, Any] | None = None,
) -> uuid.UUID:
    """Write one event in the session's current transaction (the caller commits); its id."""
    return record_events(session, entity_type, entity_id, [(event_type, metadata)])[0]


def record_events(
    session: DbSession,
    entity_type: str,
    entity_id: uuid.UUID,
    events: Sequence[tuple[str, dict[str, Any] | None]],
) -> list[uuid.UUID]:
    """Write several events of one entity (each an event type and its metadata), in this order,
    with one statement in the session's current transaction (the caller commits); their ids."""
    return insert_events(session, event_rows(entity_type, entity_id, events))


def event_rows(
    entity_type: str,
    entity_id: uuid.UUID,
    events: Sequence[tuple[str, dict[str, Any] | None]],
) -> list[dict[str, Any]]:
    """The rows `insert_events` writes for these events of one entity, checked (no secret-looking
    key) and with their ids, not yet time-stamped. A transaction builds them before its first
    write, so that SQLite's write lock is not held while they are."""
    rows = []
    for event_type, metadata in events:
        if metadata and not _FORBIDDEN_KEYS.isdisjoint(metadata):
            leaked = sorted(_FORBIDDEN_KEYS.intersection(metadata))
            raise ValueError(f"secret-looking keys in ledger metadata: {leaked}")
        rows.append({
            "id": uuid.uuid4(),
            "event_type": event_type,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "metadata": _jsonable(metadata) if metadata else {},
        })
    return rows


def stamp(rows: list[dict[str, Any]]) -> None:
    """Time-stamp rows of `event_rows` now, in order, as they are about to be written (not as
    they were built: the ledger lists by time)."""
    for row, created_at in zip(rows, _event_times(len(rows)), strict=True):
        row["created_at"] = created_at


def insert_events(session: DbSession, rows: list[dict[str, Any]]) -> list[uuid.UUID]:
    """Write rows of `event_rows` (each once), in this order, time-stamped now, with one
    statement in the session's current transaction (the caller commits); their ids."""
    stamp(rows)
    # On the session's connection, not through session.execute: that would first flush the
    # session's pending objects, and their later changes would cost an UPDATE each.
    _INSERT_EVENT.executemany(connection_of(session), rows)
    return [row["id"] for row in rows]


def _jsonable(value: Any) -> Any:
    kind = type(value)
    if kind is str or value is None or kind is int or kind is bool or kind is float:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


@dataclass(frozen=True)
class LedgerFilter:
    """What a manager filters the ledger by; every field is optional."""

    event_type: str | None = None
    entity_type: str | None = None
    entity_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None


def list_events(
    session: DbSession, filters: LedgerFilter, cursor: str | None = None, limit: int = 50
) -> Page[LedgerEvent]:
    """Events newest first, one keyset page at a time."""
    query = select(LedgerEvent)
    entity_type = filters.entity_type
    if filters.entity_id and not entity_type:
        # The entity index starts with the type: find it rather than scan every event.
        entity_type = entity_type_of(session, filters.entity_id)
        if entity_type is None:
            return Page([], None)
    if filters.event_type:
        query = query.where(LedgerEvent.event_type == filters.event_type)
    if entity_type:
        query = query.where(LedgerEvent.entity_type == entity_type)
    if filters.entity_id:
        query = query.where(LedgerEvent.entity_id == filters.entity_id)
    if filters.since:
        query = query.where(LedgerEvent.created_at >= filters.since)
    if filters.until:
        query = query.where(LedgerEvent.created_at < filters.until)
    return keyset_page(session, query, LedgerEvent.created_at, LedgerEvent.id, cursor, limit)


def events_for(session: DbSession, entity_type: str, entity_id: uuid.UUID) -> list[LedgerEvent]:
    """Every event of one entity, oldest first (its timeline)."""
    return list(
        session.scalars(
            select(LedgerEvent)
            .where(LedgerEvent.entity_type == entity_type, LedgerEvent.entity_id == entity_id)
            .order_by(LedgerEvent.created_at, LedgerEvent.id)
        )
    )


def get_event(session: DbSession, event_id: uuid.UUID) -> LedgerEvent:
    """One event, or NotFound."""
    event = session.get(LedgerEvent, event_id)
    if event is None:
        raise NotFound(f"ledger event {event_id} does not exist")
    return event


def entity_type_of(session: DbSession, entity_id: uuid.UUID) -> str | None:
    """The entity type the ledger records `entity_id` under, None when it has no events.

    Lets a filter by bare id use the (entity_type, entity_id, created_at) index: the IN list
    probes it once per known type instead of scanning every event.
    """
    return session.scalar(
        select(LedgerEvent.entity_type)
        .where(LedgerEvent.entity_type.in_(ENTITY_TYPES), LedgerEvent.entity_id == entity_id)
        .limit(1)
    )
