"""Posting quotas: how many posts an account may make in a rolling 24 hours.

Counted from the publish logs: successes by their publish time, and attempts that are running
(in a worker or in a request) or whose outcome is unknown by their start time (they may have been
posted). Limits are the
`posts_per_24h` settings in PLATFORM_LIMITS (shared/platforms.md).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, func, select

from ..models import PublishLog, PublishStatus, SocialAccount

WINDOW = timedelta(hours=24)
# Posted, or possibly posted: in flight in a worker (publishing) or in a request (pending, the
# immediate path), or of unknown outcome.
COUNTED_STATUSES = (PublishStatus.SUCCESS.value, PublishStatus.PUBLISHING.value,
                    PublishStatus.PENDING.value, PublishStatus.UNCONFIRMED.value)


@dataclass(frozen=True)
class QuotaState:
    """An account's use of its rolling quota at one moment."""

    limit: int | None
    used: int
    next_slot: datetime | None  # when a post becomes possible again, if the quota is used up

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.used, 0)

    @property
    def exhausted(self) -> bool:
        return self.limit is not None and self.used >= self.limit


def _counted_since(since: datetime):
    counted_at = func.coalesce(PublishLog.published_at, PublishLog.started_at)
    return counted_at, and_(
        PublishLog.status.in_(COUNTED_STATUSES),
        counted_at >= since,
    )


def quota_limit(platform: str) -> int | None:
    return current_app.config["PLATFORM_LIMITS"].get(platform, {}).get("posts_per_24h")


def quota_state(session, account: SocialAccount, now: datetime,
                exclude_log_id: uuid.UUID | None = None) -> QuotaState:
    """How much of its 24-hour quota `account` has used at `now`."""
    limit = quota_limit(account.platform)
    counted_at, counted = _counted_since(now - WINDOW)
    query = select(counted_at).where(PublishLog.social_account_id == account.id, counted)
    if exclude_log_id is not None:
        query = query.where(PublishLog.id != exclude_log_id)
    moments = sorted(session.scalars(query))
    used = len(moments)
    next_slot = None
    if limit is not None and used >= limit:
        # The window frees a slot when the oldest counted post in it turns 24 hours old.
        next_slot = moments[used - limit] + WINDOW
    return QuotaState(limit, used, next_slot)


def quota_states(session, accounts: list[SocialAccount], now: datetime) -> dict[uuid.UUID, QuotaState]:
    """Quota use of many accounts in one query (for the accounts page)."""
    counted_at, counted = _counted_since(now - WINDOW)
    rows = session.execute(
        select(PublishLog.social_account_id, func.count(), func.min(counted_at))
        .where(PublishLog.social_account_id.in_([a.id for a in accounts]), counted)
        .group_by(PublishLog.social_account_id)
    ).all()
    used = {account_id: count for account_id, count, _ in rows}
    states = {}
    for account in accounts:
        limit = quota_limit(account.platform)
        count = used.get(account.id, 0)
        states[account.id] = QuotaState(limit, count, None)
    return states
