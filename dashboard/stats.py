"""Figures for the home page: counts, success rate per platform, the latest failures.

Read-only queries that follow the publish log indexes: (status, requested_at) for the failures,
and the per-day counts (plus the logs of the window's first, partial day) for the rates; the
number of clips is the count the database keeps (RowCount), not a count of every clip. "Today"
starts at midnight on the user's clock; the 7-day window's per-day counts are UTC days, the
timezone every timestamp is stored in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from sqlalchemy import func, select
from sqlalchemy.orm import aliased, joinedload

from .models import (
    DAY_COUNTED_STATUSES,
    PLATFORMS,
    Clip,
    PublishDayCount,
    PublishLog,
    PublishStatus,
    RowCount,
    SocialAccount,
    utcnow,
)


@dataclass(frozen=True)
class Counts:
    """The headline numbers."""

    clips: int
    accounts: int
    active_accounts: int
    publishes_today: int


@dataclass(frozen=True)
class PlatformRate:
    """Finished publish attempts of one platform over a period; pending ones are not counted."""

    platform: str
    succeeded: int
    failed: int

    @property
    def finished(self) -> int:
        """Attempts that got an answer, either way."""
        return self.succeeded + self.failed

    @property
    def rate(self) -> float | None:
        """Share of finished attempts that succeeded, 0..1; None when there were none."""
        return self.succeeded / self.finished if self.finished else None

    @property
    def percent(self) -> int | None:
        """The rate as a whole percentage, for labels."""
        return None if self.rate is None else round(self.rate * 100)


def start_of_day(moment: datetime, zone: tzinfo = UTC) -> datetime:
    """Midnight of `moment`'s day on the clock of `zone` (UTC by default), as UTC."""
    midnight = moment.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
    return midnight.astimezone(UTC)


def _count(db, query) -> int:
    return db.session.scalar(query) or 0


def counts(db, now: datetime | None = None, zone: tzinfo = UTC) -> Counts:
    """Clips, accounts (all and active) and publish attempts since midnight on `zone`'s clock."""
    now = now or utcnow()
    return Counts(
        clips=_count(db, select(RowCount.row_count).where(RowCount.table_name == Clip.__tablename__)),
        accounts=_count(db, select(func.count()).select_from(SocialAccount)),
        active_accounts=_count(db, select(func.count()).select_from(SocialAccount)
                               .where(SocialAccount.active.is_(True))),
        publishes_today=_count(db, select(func.count()).select_from(PublishLog)
                               .where(PublishLog.requested_at >= start_of_day(now, zone))),
    )


def success_rates(db, days: int = 7, now: datetime | None = None) -> list[PlatformRate]:
    """Succeeded and failed attempts per platform over the last `days` days, every platform listed.

    The whole days of the window come from the per-day counts (PublishDayCount, a row per day,
    platform and outcome); only the first, partial day is counted from the logs themselves. So
    the cost follows one day's volume at most, not the week's.
    """
    since = (now or utcnow()) - timedelta(days=days)
    first_whole_day = start_of_day(since) + timedelta(days=1)
    whole_days = db.session.execute(
        select(PublishDayCount.platform, PublishDayCount.status, func.sum(PublishDayCount.logs))
        .where(PublishDayCount.day >= first_whole_day.date())
        .group_by(PublishDayCount.platform, PublishDayCount.status)
    )
    first_day = db.session.execute(
        select(PublishLog.platform, PublishLog.status, func.count())
        .where(PublishLog.requested_at >= since, PublishLog.requested_at < first_whole_day,
               PublishLog.status.in_(DAY_COUNTED_STATUSES))
        .group_by(PublishLog.platform, PublishLog.status)
    )
    tally: dict[str, dict[str, int]] = {platform: {} for platform in PLATFORMS}
    for platform, status, number in [*whole_days, *first_day]:
        by_status = tally.setdefault(platform, {})
        by_status[status] = by_status.get(status, 0) + int(number or 0)
    return [
        PlatformRate(platform, by_status.get(PublishStatus.SUCCESS.value, 0),
                     by_status.get(PublishStatus.FAILED.value, 0))
        for platform, by_status in tally.items()
    ]


def latest_failures(db, limit: int = 10) -> list[PublishLog]:
    """The most recent failed publish attempts nobody has retried yet (a retry under way,
    done or failed in its turn replaces its original), with their clip and account loaded."""
    retry = aliased(PublishLog)
    return list(db.session.scalars(
        select(PublishLog)
        .where(PublishLog.status == PublishStatus.FAILED.value,
               ~select(retry.id).where(retry.retry_of_id == PublishLog.id).exists())
        .order_by(PublishLog.requested_at.desc(), PublishLog.id.desc())
        .limit(limit)
        .options(joinedload(PublishLog.clip), joinedload(PublishLog.social_account))
    ))
