"""Publishing later and elsewhere: scheduling, cross-posting batches, cancel, retry.

Each function validates before writing, commits the log with its ledger event, then hands the
log's id to the queue (publishing/worker.py does the platform call).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..errors import (
    AccountNotFound,
    Conflict,
    FieldError,
    InvalidInput,
    NotFound,
    PublishLogNotFound,
)
from ..ledger import record_event
from ..models import (
    WAITING_STATUSES,
    PublishBatch,
    PublishLog,
    PublishStatus,
    SocialAccount,
    utcnow,
)
from ..transactions import rolls_back
from .service import insert_log, load_target
from .worker import enqueue

# Scheduling a little in the past (a slow form, clock skew) publishes now; more is a mistake.
PAST_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class Target:
    """One destination of a publish: an account (or a platform, for the simulator) and its text."""

    platform: str
    social_account_id: uuid.UUID | None
    caption: str
    hashtags: list[str]
    # Where the request named this target (e.g. "targets.2", "with_satellites_of.0"): errors
    # about it are reported under that field.
    source: str | None = None


def _new_log(db, clip_id, target: Target, status: str, when: datetime, **extra) -> PublishLog:
    log_row = PublishLog(
        clip_id=clip_id, platform=target.platform, social_account_id=target.social_account_id,
        status=status, caption=target.caption, hashtags=list(target.hashtags),
        requested_at=utcnow(), next_attempt_at=when, **extra,
    )
    insert_log(db.session, log_row)
    return log_row


def _checked_time(scheduled_at: datetime) -> datetime:
    """A schedule time as UTC (the log and the ledger keep UTC); 400 naming the field when it
    has no offset or is long past."""
    if scheduled_at.tzinfo is None or scheduled_at.utcoffset() is None:
        raise InvalidInput.field("scheduled_at", "needs a UTC offset (e.g. 2026-11-26T09:00:00+01:00) "
                                 "or a timezone (e.g. Europe/Paris)")
    scheduled_at = scheduled_at.astimezone(UTC)
    if scheduled_at < utcnow() - PAST_TOLERANCE:
        raise InvalidInput.field("scheduled_at", "is in the past")
    return scheduled_at


@rolls_back
def schedule_publish(db, clip_id: uuid.UUID, target: Target, scheduled_at: datetime) -> PublishLog:
    """Schedule a post for `scheduled_at` (timezone-aware; stored as UTC) and commit it."""
    scheduled_at = _checked_time(scheduled_at)
    load_target(db, clip_id, target.platform, target.social_account_id, target.caption, target.hashtags)
    log_row = _schedule(db, clip_id, target, scheduled_at)
    db.session.commit()
    enqueue(log_row.id, scheduled_at)
    return log_row


def _schedule(db, clip_id, target: Target, scheduled_at: datetime, **extra) -> PublishLog:
    log_row = _new_log(db, clip_id, target, PublishStatus.SCHEDULED.value, scheduled_at,
                       scheduled_at=scheduled_at, **extra)
    metadata = {"platform": target.platform, "social_account_id": target.social_account_id,
                "scheduled_at": scheduled_at, "publish_log_id": log_row.id}
    if extra.get("batch_id"):
        metadata["batch_id"] = extra["batch_id"]
    record_event(db.session, "publish_scheduled", "clip", clip_id, metadata)
    return log_row


@rolls_back
def queue_publish(db, clip_id: uuid.UUID, target: Target, *, batch_id=None, retry_of_id=None) -> PublishLog:
    """Queue a post to go out as soon as a worker is free (commits)."""
    load_target(db, clip_id, target.platform, target.social_account_id, target.caption, target.hashtags)
    log_row = _queue(db, clip_id, target, batch_id=batch_id, retry_of_id=retry_of_id)
    db.session.commit()
    enqueue(log_row.id)
    return log_row


def _queue(db, clip_id, target: Target, **extra) -> PublishLog:
    log_row = _new_log(db, clip_id, target, PublishStatus.QUEUED.value, utcnow(), **extra)
    metadata = {"platform": target.platform, "social_account_id": target.social_account_id,
                "publish_log_id": log_row.id}
    for key in ("batch_id", "retry_of_id"):
        if extra.get(key):
            metadata[key] = extra[key]
    record_event(db.session, "publish_queued", "clip", clip_id, metadata)
    return log_row


def expand_targets(db, platform_accounts: list[uuid.UUID], with_satellites_of: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Account ids to publish to, each with the request field that named it: those picked
    (`targets.N`), plus each named main account and its active satellites
    (`with_satellites_of.N`). An account named twice is kept once, where it came first.
    """
    ids: dict[uuid.UUID, str] = {}
    for index, account_id in enumerate(platform_accounts):
        ids.setdefault(account_id, f"targets.{index}")
    for index, main_id in enumerate(with_satellites_of):
        main = db.session.get(SocialAccount, main_id)
        if main is None:
            raise AccountNotFound(main_id)
        if not main.is_main:
            raise InvalidInput.field("with_satellites_of", f"@{main.handle} is a satellite, not a main account")
        for account_id in [main.id, *(s.id for s in main.satellites if s.active)]:
            ids.setdefault(account_id, f"with_satellites_of.{index}")
    return ids


class TargetRefused(InvalidInput):
    """One target of a cross-post breaks a rule: `target` is the one, and each error's field is
    prefixed with where the request named it (`targets.1.metadata.caption`)."""

    def __init__(self, exc: InvalidInput, target: Target, prefix: str):
        super().__init__(f"{prefix}: {exc.detail}", [FieldError(f"{prefix}.{e.field}", e.message) for e in exc.errors])
        self.target = target
        self.prefix = prefix


Text = tuple[str, list[str]]  # a caption and its hashtags


def batch_targets(db, picked: list[uuid.UUID], with_satellites_of: list[uuid.UUID], default: Text,
                  own: dict[uuid.UUID, Text] | None = None) -> list[Target]:
    """The targets of a cross-post, for the page and the API alike: the accounts `picked`
    (`targets.N`), then each main account of `with_satellites_of` with its active satellites;
    each with its `own` caption and hashtags when it has them, else the `default` ones.

    An account picked twice, or one that does not exist, is refused naming its field.
    """
    seen: set[uuid.UUID] = set()
    for index, account_id in enumerate(picked):
        if account_id in seen:
            raise InvalidInput.field(f"targets.{index}.social_account_id", "this account is listed twice")
        seen.add(account_id)
    own = own or {}
    targets = []
    for account_id, source in expand_targets(db, picked, with_satellites_of).items():
        account = db.session.get(SocialAccount, account_id)
        if account is None:
            raise InvalidInput.field(f"{source}.social_account_id", f"account {account_id} does not exist")
        caption, hashtags = own.get(account_id, default)
        targets.append(Target(account.platform, account.id, caption, list(hashtags), source))
    return targets


@rolls_back
def create_batch(db, clip_id: uuid.UUID, targets: list[Target], created_by_id=None,
                 scheduled_at: datetime | None = None) -> PublishBatch:
    """Cross-post a clip: one log per target, all committed together, then queued; with
    `scheduled_at` (timezone-aware) every target is scheduled for that moment instead.

    Every target is checked first; one bad target refuses the whole batch (TargetRefused).
    """
    if scheduled_at is not None:
        scheduled_at = _checked_time(scheduled_at)
    if not targets:
        raise InvalidInput.field("targets", "name at least one account")
    for index, target in enumerate(targets):
        try:
            load_target(db, clip_id, target.platform, target.social_account_id, target.caption,
                        target.hashtags)
        except InvalidInput as exc:
            raise TargetRefused(exc, target, target.source or f"targets.{index}") from None
    batch = PublishBatch(clip_id=clip_id, created_by_id=created_by_id)
    db.session.add(batch)
    db.session.flush()
    if scheduled_at is None:
        logs = [_queue(db, clip_id, target, batch_id=batch.id) for target in targets]
    else:
        logs = [_schedule(db, clip_id, target, scheduled_at, batch_id=batch.id) for target in targets]
    record_event(db.session, "publish_batch_created", "clip", clip_id, {
        "batch_id": batch.id, "targets": len(logs), "publish_log_ids": [log_row.id for log_row in logs],
        **({"scheduled_at": scheduled_at} if scheduled_at else {}),
    })
    db.session.commit()
    for log_row in logs:
        enqueue(log_row.id, scheduled_at)
    return batch


@dataclass(frozen=True)
class BatchSummary:
    status: str  # running | succeeded | failed | partial
    counts: dict[str, int]
    done: bool


def current_logs(batch: PublishBatch) -> list[PublishLog]:
    """One log per target: its latest attempt (a log a person retried is replaced by its retry)."""
    retried = {row.retry_of_id for row in batch.logs if row.retry_of_id is not None}
    return [row for row in batch.logs if row.id not in retried]


def summarize_batch(batch: PublishBatch) -> BatchSummary:
    """The batch's state from its targets' latest attempts: running until every target has a
    final state; then succeeded or failed when all ended alike, and partial when they ended
    differently."""
    counts: dict[str, int] = {}
    for log_row in current_logs(batch):
        counts[log_row.status] = counts.get(log_row.status, 0) + 1
    waiting = sum(counts.get(s, 0) for s in (*WAITING_STATUSES, PublishStatus.PUBLISHING.value,
                                              PublishStatus.PENDING.value))
    if waiting:
        return BatchSummary("running", counts, False)
    if set(counts) == {PublishStatus.SUCCESS.value}:
        return BatchSummary("succeeded", counts, True)
    if PublishStatus.SUCCESS.value not in counts:
        return BatchSummary("failed", counts, True)
    return BatchSummary("partial", counts, True)


def get_batch(db, batch_id: uuid.UUID) -> PublishBatch:
    batch = db.session.get(PublishBatch, batch_id)
    if batch is None:
        raise NotFound(f"batch {batch_id} does not exist")
    return batch


def get_log(db, log_id: uuid.UUID, *, for_update: bool = False) -> PublishLog:
    """A publish log; `for_update` locks its row (PostgreSQL) and reads it afresh, so a
    decision taken on its status holds until the caller commits."""
    log_row = db.session.get(PublishLog, log_id, with_for_update=for_update or None,
                             populate_existing=for_update)
    if log_row is None:
        raise PublishLogNotFound(log_id)
    return log_row


@rolls_back
def cancel(db, log_id: uuid.UUID) -> PublishLog:
    """Cancel a scheduled or queued post that has not started (commits); 409 once it has.

    The row is locked while deciding: a worker claiming it meanwhile either waits and finds it
    cancelled, or has claimed it and the cancel is refused.
    """
    log_row = get_log(db, log_id, for_update=True)
    if not log_row.can_cancel:
        raise Conflict(f"this post is {log_row.status} and can no longer be cancelled")
    log_row.status = PublishStatus.CANCELLED.value
    log_row.next_attempt_at = None
    record_event(db.session, "publish_cancelled", "clip", log_row.clip_id, {
        "platform": log_row.platform, "publish_log_id": log_row.id,
    })
    db.session.commit()
    return log_row


@rolls_back
def reschedule(db, log_id: uuid.UUID, scheduled_at: datetime) -> PublishLog:
    """Move a scheduled post to another time before it starts (commits)."""
    log_row = get_log(db, log_id, for_update=True)
    if log_row.status != PublishStatus.SCHEDULED.value:
        raise Conflict(f"this post is {log_row.status}; only scheduled posts can be rescheduled")
    scheduled_at = _checked_time(scheduled_at)
    previous = log_row.scheduled_at
    log_row.scheduled_at = scheduled_at
    log_row.next_attempt_at = scheduled_at
    record_event(db.session, "publish_rescheduled", "clip", log_row.clip_id, {
        "platform": log_row.platform, "publish_log_id": log_row.id,
        "from": previous, "to": scheduled_at,
    })
    db.session.commit()
    enqueue(log_row.id, scheduled_at)
    return log_row


@rolls_back
def retry(db, log_id: uuid.UUID) -> PublishLog:
    """A person retries a failed or unconfirmed post, once: a new queued log linked to it
    (`retry_of_id`) and kept in its batch (commits); 409 when it was retried already (retry the
    new log if that one fails too).

    Every caller (home, history, batch rows, the API) uses this one function, and every retry
    goes through the queue: the new attempt and its link are committed before any platform
    call, so the "once" holds (a unique index backs the check), the batch follows the retry, and
    a quota that is used up makes the retry wait for its slot instead of refusing it.
    """
    original = get_log(db, log_id, for_update=True)
    if not original.can_retry:
        raise Conflict(f"this post is {original.status}; only failed or unconfirmed posts are retried")
    # Once: a second Retry (a double click, two managers) would post the clip twice.
    earlier = db.session.scalar(select(PublishLog.id).where(PublishLog.retry_of_id == original.id).limit(1))
    if earlier is not None:
        raise Conflict(f"this post was already retried: see publish log {earlier}")
    target = Target(original.platform, original.social_account_id, original.caption,
                    list(original.hashtags or []))
    load_target(db, original.clip_id, target.platform, target.social_account_id, target.caption,
                target.hashtags)
    log_row = _queue(db, original.clip_id, target, batch_id=original.batch_id,
                     retry_of_id=original.id)
    try:
        db.session.commit()
    except IntegrityError:
        # A concurrent retry of the same log committed first (the unique retry_of_id).
        db.session.rollback()
        raise Conflict("this post was already retried") from None
    enqueue(log_row.id)
    return log_row


def retry_of(db, log_id: uuid.UUID) -> PublishLog | None:
    """The retry made of a publish log (there is at most one), or None: what a refused second
    Retry shows instead, so the person follows the one that was made."""
    return db.session.scalar(select(PublishLog).where(PublishLog.retry_of_id == log_id).limit(1))


def retry_failed(db, batch_id: uuid.UUID) -> tuple[list[PublishLog], dict[uuid.UUID, str]]:
    """Retry every target of a batch whose latest attempt failed, each through `retry` (once,
    linked, in the batch; commits each). Unconfirmed targets are left to a person, who checks
    the platform first. The retries queued, and the refusals by log id (an account deactivated
    since, retried meanwhile by someone else).
    """
    batch = get_batch(db, batch_id)
    failed = [row.id for row in current_logs(batch) if row.status == PublishStatus.FAILED.value]
    queued: list[PublishLog] = []
    refused: dict[uuid.UUID, str] = {}
    for log_id in failed:
        try:
            queued.append(retry(db, log_id))
        except (Conflict, InvalidInput, NotFound) as exc:
            db.session.rollback()
            refused[log_id] = "; ".join(e.message for e in exc.errors) or exc.detail
    return queued, refused


@rolls_back
def mark_published(db, log_id: uuid.UUID, external_url: str | None = None) -> PublishLog:
    """A person confirms that an unconfirmed post did go out (commits)."""
    log_row = get_log(db, log_id, for_update=True)
    if not log_row.can_mark:
        raise Conflict(f"this post is {log_row.status}; only unconfirmed posts can be marked")
    log_row.status = PublishStatus.SUCCESS.value
    log_row.published_at = utcnow()
    if external_url:
        log_row.external_url = external_url
    record_event(db.session, "publish_marked_published", "clip", log_row.clip_id, {
        "platform": log_row.platform, "publish_log_id": log_row.id, "external_url": external_url,
    })
    db.session.commit()
    return log_row


def upcoming(db, start: datetime, end: datetime) -> list[PublishLog]:
    """Scheduled posts between `start` and `end` (UTC), soonest first (the week view)."""
    return list(db.session.scalars(
        select(PublishLog)
        .where(PublishLog.status == PublishStatus.SCHEDULED.value,
               PublishLog.next_attempt_at >= start, PublishLog.next_attempt_at < end)
        .order_by(PublishLog.next_attempt_at)
    ))
