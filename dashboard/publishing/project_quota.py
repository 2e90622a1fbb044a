"""YouTube's daily upload quota, counted per Google Cloud project instead of per account.

`videos.insert` has its own bucket (YOUTUBE_UPLOADS_PER_DAY, 100 calls a day by default) that
belongs to the Google Cloud project whose OAuth client the tokens were issued to, i.e. the
accounts' `client_id`: every channel published through the same app shares it. It resets at
midnight Pacific time (America/Los_Angeles), not on a rolling window.

How the pipeline uses it, in the YouTube attempt's prepare step (one transaction):

    quota = youtube_project_quota(session, credentials["client_id"], now, exclude_log_id=log.id)
    if quota.exhausted:
        defer the attempt by quota.retry_after(now) seconds (nothing is sent)
    else:
        count_youtube_upload(log, credentials["client_id"], now)   # then commit with the step

An attempt is stamped with a fingerprint of its project (`publish_logs.quota_project`, a SHA-256
prefix of the client id, so the count is an indexed query without decrypting credentials) and
the moment it was counted (`quota_counted_at`). The per-account rolling quota (quotas.py) is
unchanged and still applies. A log counts once per Pacific day however often it is retried;
two workers checking at the same instant may both pass: YouTube's own `quotaExceeded` (a
transient error until the reset) is the backstop.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import func, select

from ..models import PublishLog
from .providers.youtube import pacific_day, project_fingerprint


@dataclass(frozen=True)
class ProjectQuota:
    """A Google Cloud project's use of its daily YouTube upload quota at one moment."""

    limit: int
    used: int
    resets_at: datetime  # the next midnight Pacific time, in UTC

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    @property
    def exhausted(self) -> bool:
        return self.used >= self.limit

    def retry_after(self, now: datetime) -> float:
        """Seconds from `now` until the quota resets (a Retry-After value)."""
        return max((self.resets_at - now).total_seconds(), 0.0)


def youtube_project_quota(session, client_id: str, now: datetime,
                          exclude_log_id: uuid.UUID | None = None) -> ProjectQuota:
    """How many uploads the project of `client_id` has made in the Pacific-time day of `now`.

    Counts the attempts of every account whose credentials carry that client id (stamped by
    `count_youtube_upload`), excluding `exclude_log_id` (the attempt asking).
    """
    start, end = pacific_day(now)
    query = select(func.count()).select_from(PublishLog).where(
        PublishLog.quota_project == project_fingerprint(client_id),
        PublishLog.quota_counted_at >= start,
        PublishLog.quota_counted_at < end,
    )
    if exclude_log_id is not None:
        query = query.where(PublishLog.id != exclude_log_id)
    used = session.scalar(query) or 0
    return ProjectQuota(int(current_app.config["YOUTUBE_UPLOADS_PER_DAY"]), used, end)


def count_youtube_upload(log_row: PublishLog, client_id: str, now: datetime) -> None:
    """Count the attempt `log_row` against its project's quota (the caller commits)."""
    log_row.quota_project = project_fingerprint(client_id)
    log_row.quota_counted_at = now
