"""Posting quotas: how many posts an account may make in a rolling 24 hours.

Counted from the publish logs: successes by their publish time, and attempts that are running
(in a worker or in a request) or whose outcome is unknown by their start time (they may have been
posted). The database keeps that time on each log (`PublishLog.counts_at`, NULL for logs that
use no slot), indexed with the account, so a count reads the account's 24-hour window only,
however long its history. Limits are the `posts_per_24h` settings in PLATFORM_LIMITS
(shared/platforms.md).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select

from ..models import QUOTA_STATUSES, PublishLog, SocialAccount

WINDOW = timedelta(hours=24)
# Posted, or possibly posted: in flight in a worker (publishing) or in a request (pending, the
# immediate path), or of unknown outcome.
COUNTED_STATUSES = QUOTA_STATUSES


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


def quota_limit(platform: str) -> int | None:
    return current_app.config["PLATFORM_LIMITS"].get(platform, {}).get("posts_per_24h")


def quota_state(session, account: SocialAccount, now: datetime,
                exclude_log_id: uuid.UUID | None = None) -> QuotaState:
    """How much of its 24-hour quota `account` has used at `now`."""
    limit = quota_limit(account.platform)
    in_window = [PublishLog.social_account_id == account.id, PublishLog.counts_at >= now - WINDOW]
    if exclude_log_id is not None:
        in_window.append(PublishLog.id != exclude_log_id)
    used = session.scalar(select(func.count()).select_from(PublishLog).where(*in_window))
    next_slot = None
    if limit is not None and used >= limit:
        # The window frees a slot when the oldest counted post in it turns 24 hours old (with
        # more than `limit` in the window, the one that brings the count under the limit).
        oldest = session.scalar(select(PublishLog.counts_at).where(*in_window)
                                .order_by(PublishLog.counts_at).offset(used - limit).limit(1))
        next_slot = oldest + WINDOW
    return QuotaState(limit, used, next_slot)


def quota_states(session, accounts: list[SocialAccount], now: datetime) -> dict[uuid.UUID, QuotaState]:
    """Quota use of many accounts in one query (for the accounts page)."""
    rows = session.execute(
        select(PublishLog.social_account_id, func.count())
        .where(PublishLog.social_account_id.in_([a.id for a in accounts]),
               PublishLog.counts_at >= now - WINDOW)
        .group_by(PublishLog.social_account_id)
    ).all()
    used = dict(rows)
    return {account.id: QuotaState(quota_limit(account.platform), used.get(account.id, 0), None)
            for account in accounts}
