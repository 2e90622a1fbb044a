"""Publish history: every publish attempt, filtered and paged newest first.

The filters map onto the publish_logs indexes (status, platform, account or clip, each with
requested_at; requested_at alone otherwise), so a page costs the same at a million logs as at a
thousand: keyset pagination, no COUNT and no OFFSET.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .errors import PublishLogNotFound
from .models import PublishLog
from .pagination import Page, keyset_page


@dataclass(frozen=True)
class HistoryFilter:
    """What a manager filters the publish history by; every field is optional.

    `since` is inclusive and `until` exclusive, both timezone-aware.
    """

    status: str | None = None
    platform: str | None = None
    social_account_id: uuid.UUID | None = None
    clip_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None


def list_publish_logs(
    db, filters: HistoryFilter, cursor: str | None = None, limit: int = 50
) -> Page[PublishLog]:
    """Publish logs newest first (requested_at, then id), one keyset page at a time.

    Each log comes with its clip and account loaded. A damaged cursor is InvalidInput on `cursor`.
    """
    query = select(PublishLog)
    # SQLite keeps no statistics and, given status and an account, walks the status index: a
    # quiet account's failures then cost a scan of every failed log (150 ms at 1M logs). Hiding
    # the less selective columns from its planner (`col || ''`) makes it take the index of the
    # most selective filter: clip, account, status, platform. PostgreSQL's statistics choose well.
    sqlite = db.session.get_bind().dialect.name == "sqlite"
    narrower = bool(filters.clip_id or filters.social_account_id)
    if filters.status:
        column = PublishLog.status.concat("") if sqlite and narrower else PublishLog.status
        query = query.where(column == filters.status)
    if filters.platform:
        narrower = narrower or bool(filters.status)
        column = PublishLog.platform.concat("") if sqlite and narrower else PublishLog.platform
        query = query.where(column == filters.platform)
    if filters.social_account_id:
        query = query.where(PublishLog.social_account_id == filters.social_account_id)
    if filters.clip_id:
        query = query.where(PublishLog.clip_id == filters.clip_id)
    if filters.since:
        query = query.where(PublishLog.requested_at >= filters.since)
    if filters.until:
        query = query.where(PublishLog.requested_at < filters.until)
    query = query.options(selectinload(PublishLog.clip), selectinload(PublishLog.social_account),
                          selectinload(PublishLog.retried_by), selectinload(PublishLog.retry_of))
    return keyset_page(db.session, query, PublishLog.requested_at, PublishLog.id, cursor, limit)


def get_publish_log(db, log_id: uuid.UUID) -> PublishLog:
    """The publish log, or NotFound."""
    log_row = db.session.get(PublishLog, log_id)
    if log_row is None:
        raise PublishLogNotFound(log_id)
    return log_row
