"""The engine's service layer: publish now, and the steps every attempt shares.

The same functions serve the JSON API, the htmx button, the CLI and the background workers; they
never import flask.request, forms or templates. No transaction or pooled connection is held
across a platform call: committing the attempt returns the connection first, and the outcome
is recorded in a new transaction.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, cast

from flask import current_app
from sqlalchemy import Table, bindparam, insert, inspect, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import make_transient_to_detached

from ..direct_sql import DirectStatement, connection_of
from ..errors import (
    AccountNotFound,
    ClipNotFound,
    DomainError,
    InvalidInput,
    database_error_cause,
)
from ..extensions import take_write_lock
from ..idempotency import link_created_work
from ..ledger import event_rows, insert_events, record_event
from ..linking import ensure_fresh_token
from ..media.clips import media_facts
from ..models import (
    FINAL_STATUSES,
    Clip,
    PublishLog,
    PublishStatus,
    SocialAccount,
    TargetClip,
    platform_name,
    utcnow,
)
from ..transactions import rolls_back
from . import journal
from .journal import OutcomeNotRecorded
from .models import PublishRequest, PublishResult
from .outcome import PlatformOutcome, Publisher, PublishJob
from .quotas import quota_state
from .rules import check_publish, compose_caption

log = logging.getLogger(__name__)


class QuotaExceeded(DomainError):
    """The account has used its rolling 24-hour quota; `retry_at` is when a slot frees."""

    status = 429
    title = "Quota exceeded"

    def __init__(self, detail: str, retry_at: datetime):
        super().__init__(detail)
        self.retry_at = retry_at

    @property
    def headers(self) -> dict[str, str]:
        seconds = max(int((self.retry_at - utcnow()).total_seconds()) + 1, 1)
        return {"Retry-After": str(seconds)}


_CLIPS = cast(Table, Clip.__table__)
_TARGET_CLIP = DirectStatement(select(*(_CLIPS.c[f.name] for f in fields(TargetClip))).where(
    _CLIPS.c.id == bindparam("clip_id")))


def load_target(db, clip_id: uuid.UUID, platform: str, account_id: uuid.UUID | None,
                caption: str, hashtags: list[str], *,
                lock: bool = False) -> tuple[TargetClip, SocialAccount | None]:
    """The clip and account of a publish, checked; raises before anything is written. With
    `lock`, the account is read under `lock_account`'s lock (held to the commit), after the clip.

    NotFound for an unknown clip or account; InvalidInput for an account of another platform,
    an inactive account, an account that needs new credentials, or a broken platform rule.
    """
    # The clip's columns with one Core statement: no Clip is loaded into the session for it.
    row = _TARGET_CLIP.first(connection_of(db.session), {"clip_id": clip_id})
    if row is None:
        raise ClipNotFound(clip_id)
    clip = TargetClip(*row)
    account = None
    if account_id is not None:
        account = lock_account(db, account_id) if lock else db.session.get(SocialAccount, account_id)
        if account is None:
            raise AccountNotFound(account_id)
        if account.platform != platform:
            raise InvalidInput.field(
                "social_account_id",
                f"@{account.handle} is a {platform_name(account.platform)} account, not {platform_name(platform)}",
            )
        if not account.active:
            raise InvalidInput.field("social_account_id", f"@{account.handle} is inactive")
        if account.needs_credentials:
            raise InvalidInput.field("social_account_id", needs_credentials_message(account))
        if account.needs_reconnect:
            raise InvalidInput.field("social_account_id", needs_reconnect_message(account))
    errors = rule_errors(platform, clip, caption, hashtags)
    if errors:
        raise InvalidInput("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    return clip, account


def rule_errors(platform: str, clip: Clip | TargetClip, caption: str, hashtags: list[str]) -> list:
    """The platform rules (rules.py, with today's PLATFORM_LIMITS) a post of `clip` breaks."""
    return check_publish(
        platform,
        current_app.config["PLATFORM_LIMITS"].get(platform, {}),
        caption=caption,
        hashtags=hashtags,
        clip_title=clip.title,
        duration_seconds=clip.duration_seconds,
        media=media_facts(clip),
    )


def rules_broken_now(log_row: PublishLog, clip: Clip) -> str | None:
    """The platform rules a post breaks as it goes out, in words; None when it may be sent.

    A scheduled or queued post was checked when it was made, but its clip may have been edited
    since, or the platform's limit setting changed: it is checked again before the call.
    """
    errors = rule_errors(log_row.platform, clip, log_row.caption or "", list(log_row.hashtags or []))
    if not errors:
        return None
    return "refused at send time: " + "; ".join(f"{e.field}: {e.message}" for e in errors)


def needs_credentials_message(account: SocialAccount) -> str:
    reason = f" ({account.needs_credentials_reason})" if account.needs_credentials_reason else ""
    return f"@{account.handle} needs new credentials{reason}: save them on the accounts page"


def needs_reconnect_message(account: SocialAccount) -> str:
    reason = f" ({account.needs_reconnect_reason})" if account.needs_reconnect_reason else ""
    return f"@{account.handle} must be reconnected{reason}: use Reconnect on the accounts page"


def lock_account(db, account_id: uuid.UUID | None) -> SocialAccount | None:
    """Serialise quota checks per account until the commit, and read the account afresh under
    that lock (None when there is none). PostgreSQL: a row lock, taken by that read; SQLite,
    whose writers queue on one lock anyway: the write lock, then the read. While the caller
    holds the result, the session serves later reads of the account without a query."""
    if account_id is None:
        return None
    if db.session.get_bind().dialect.name == "sqlite":
        take_write_lock(db.session)
        return db.session.get(SocialAccount, account_id, populate_existing=True)
    return db.session.get(SocialAccount, account_id, with_for_update=True, populate_existing=True)


_LOGS = cast(Table, PublishLog.__table__)
_INSERT_LOG = DirectStatement(insert(_LOGS))
# The log's mapped attributes, their columns and their Python-side defaults (None when a column
# has none), and whether a column left out of an INSERT is NULL (no default of the database's);
# counts_at is computed by the database.
_LOG_COLUMNS = tuple((prop.key, prop.columns[0].key, prop.columns[0].default,
                      prop.columns[0].server_default is None)
                     for prop in inspect(PublishLog).column_attrs if prop.columns[0].computed is None)


def insert_log(session, log_row: PublishLog) -> None:
    """Insert a new publish log (one Core INSERT in the session's current transaction; the
    caller commits) and keep `log_row` in the session as that row, as if loaded: nothing is
    inserted again when the session flushes, and its later changes are UPDATEs. The request's
    idempotency key, if it has one, is linked to it in the same transaction. Every new log is
    created here.

    Columns `log_row` leaves unset get their defaults, which `log_row` then holds too; what the
    database sets itself (`counts_at`) is read if asked for.
    """
    # Everything but the INSERT happens before it: on SQLite a transaction's first write takes
    # the write lock, held to the commit.
    given = log_row.__dict__
    values: dict[str, Any] = {}
    for name, column, default, null_when_left_out in _LOG_COLUMNS:
        if name in given:
            values[column] = given[name]
        elif default is not None and default.is_scalar:
            values[column] = given[name] = default.arg
        elif default is not None and default.is_callable:
            values[column] = given[name] = default.arg(None)  # as SQLAlchemy's INSERT would
        elif null_when_left_out:
            given[name] = None  # what the database writes for a column left out
    make_transient_to_detached(log_row)
    session.add(log_row)
    try:
        _INSERT_LOG.execute(connection_of(session), values)
    except BaseException:
        session.expunge(log_row)  # no such row: the session must not hold it as one
        raise
    link_created_work(session, publish_log_id=log_row.id)


def job_for(log_row: PublishLog, clip: Clip | TargetClip, account: SocialAccount | None) -> PublishJob:
    """The plain values a publisher needs for this attempt."""
    return PublishJob(
        platform=log_row.platform,
        clip_title=clip.title,
        clip_description=clip.description,
        media=clip.media,
        duration_seconds=clip.duration_seconds,
        caption=compose_caption(log_row.caption, log_row.hashtags or []),
        hashtags=tuple(log_row.hashtags or []),
        account_handle=account.handle if account else None,
    )


def call_platform(publisher: Publisher, job: PublishJob) -> PlatformOutcome:
    """Run the platform call; an exception is a failed publish with its message, never a 500.

    It is not retried automatically: a client that can tell a lost answer (the platform may have
    posted) returns an outcome of kind "unknown" instead of raising.
    """
    try:
        return publisher.publish(job)
    except Exception as exc:
        log.warning("publisher %s raised %s", publisher.name, type(exc).__name__)
        return PlatformOutcome(False, error_message=str(exc) or type(exc).__name__,
                               error_kind="permanent")


@dataclass(frozen=True)
class PublishAttempt:
    """What a publish now did: the log's result, final or (a live attempt past the sync wait)
    still going on in the queue."""

    log_id: uuid.UUID
    status: str
    result: PublishResult

    @property
    def done(self) -> bool:
        return self.status in FINAL_STATUSES


def publish_clip(db, request: PublishRequest) -> PublishResult:
    """Publish a clip to one platform now; the attempt's result (see `publish_now`)."""
    return publish_now(db, request).result


@rolls_back
def publish_now(db, request: PublishRequest) -> PublishAttempt:
    """Publish a clip to one platform now, recording the attempt and its every step.

    Raises NotFound, InvalidInput or QuotaExceeded before anything is written. A platform failure
    is not an exception: the result says `success: False` with the platform's message. A live
    attempt still running after PUBLISH_SYNC_WAIT seconds is left to the queue: the attempt is
    then not `done` and its log is the one to follow.
    """
    from . import pipeline

    session = db.session
    metadata = request.metadata
    # A linked token near its expiry is refreshed first, before this attempt's transaction.
    ensure_fresh_token(db, request.social_account_id)
    clip, account = load_target(db, request.clip_id, request.platform, request.social_account_id,
                                metadata.caption, metadata.hashtags, lock=True)
    now = utcnow()
    if account is not None:
        quota = quota_state(session, account, now)
        if quota.exhausted:
            assert quota.next_slot is not None  # quota_state() sets it whenever the quota is used up
            raise QuotaExceeded(
                f"@{account.handle} has made {quota.used} of its {quota.limit} posts in the last "
                f"24 hours; the next post is possible at {quota.next_slot:%Y-%m-%d %H:%M} UTC. "
                "Schedule it for then instead.",
                quota.next_slot,
            )
    log_row = PublishLog(
        id=uuid.uuid4(),  # known now: the events name it
        clip_id=clip.id,
        platform=request.platform,
        social_account_id=account.id if account else None,
        status=PublishStatus.PENDING.value,
        caption=metadata.caption,
        hashtags=list(metadata.hashtags),
        requested_at=now,
        started_at=now,
        attempts=1,
    )
    attempt = pipeline.start(db, log_row, clip, account, started={
        "platform": request.platform,
        "social_account_id": log_row.social_account_id,
        "publish_log_id": log_row.id,
    }, insert=True)
    log_id = log_row.id
    # Committing ends the transaction and returns the connection to the pool before the (slow)
    # platform call. The session is not closed: that would detach the caller's objects (the
    # signed-in user of a page, say) and break them after we return. The pipeline writes each
    # step in its own short transaction.
    # One call: nothing else writes the log until its outcome, which the pipeline writes back
    # onto this object as it commits it. Kept unexpired by both commits, the log holds what was
    # committed, and the answer needs no read of it.
    with _unexpired_by_commits(session, keep=not attempt.live):
        session.commit()
        sync_wait = current_app.config["PUBLISH_SYNC_WAIT"]
        try:
            pipeline.run(db, attempt, may_retry=False, sync_wait=sync_wait)
            if attempt.live:
                log_row = session.get(PublishLog, log_id, populate_existing=True)
            published = PublishAttempt(log_id, log_row.status, result_of(log_row))
            if attempt.live:
                session.commit()
        except SQLAlchemyError as exc:
            # The platform may have been called: a bare "database unreachable" would hide a post
            # that went out. The log is settled once the database is back (journal.py).
            journal.rollback(db)
            log.error("publish log %s: the database failed after the attempt started (%s)", log_id,
                      database_error_cause(exc))
            raise OutcomeNotRecorded(log_id) from exc
    return published


@contextmanager
def _unexpired_by_commits(session, *, keep: bool) -> Iterator[None]:
    """With `keep`, the session's commits in the block expire nothing."""
    real_session = session()
    expire_on_commit = real_session.expire_on_commit
    if keep:
        real_session.expire_on_commit = False
    try:
        yield
    finally:
        real_session.expire_on_commit = expire_on_commit


def next_retry_at(attempts_made: int) -> datetime | None:
    """When to try again after `attempts_made` transient failures; None when none are left.

    Exponential backoff with jitter: base * 2^(n-1), capped, then a random point in its upper
    half, so that posts that failed together don't all come back together.
    """
    config = current_app.config
    if attempts_made >= config["PUBLISH_MAX_ATTEMPTS"]:
        return None
    delay = min(config["RETRY_MAX_DELAY"], config["RETRY_BASE_DELAY"] * 2 ** (attempts_made - 1))
    return utcnow() + timedelta(seconds=delay * random.uniform(0.5, 1.0))


IN_FLIGHT = (PublishStatus.PENDING.value, PublishStatus.PUBLISHING.value)


@dataclass(frozen=True)
class AttemptFacts:
    """What recording an attempt's outcome needs to know of its log. None of it changes while
    the attempt is in flight, so it is kept from the start across the platform call (or read
    from the log) instead of loading the log again."""

    id: uuid.UUID
    clip_id: uuid.UUID
    platform: str
    social_account_id: uuid.UUID | None
    provider: str | None
    attempts: int
    status: str
    started_at: datetime | None
    requested_at: datetime

    @classmethod
    def of(cls, log_row) -> AttemptFacts:
        """The facts of a log (an ORM object or a row with the same names)."""
        return cls(log_row.id, log_row.clip_id, log_row.platform, log_row.social_account_id,
                   log_row.provider, log_row.attempts, log_row.status, log_row.started_at,
                   log_row.requested_at)


@dataclass(frozen=True)
class OutcomeChange:
    """What a platform's answer writes: the log's new values and the ledger event saying so."""

    facts: AttemptFacts
    values: dict[str, Any]
    event_type: str
    event: dict[str, Any]
    # Set when the platform refused the account's token: the account needs new credentials.
    credentials_refused: str | None = None

    @property
    def retry_at(self) -> datetime | None:
        """When the queue tries again, if the attempt was queued again."""
        return self.values["next_attempt_at"] if self.values["status"] == PublishStatus.QUEUED.value else None

    def event_rows(self) -> list[dict[str, Any]]:
        """The outcome's ledger event as the row `record_event(session, rows)` writes (see
        `ledger.event_rows`); built before the outcome's UPDATE takes SQLite's write lock."""
        return event_rows("clip", self.facts.clip_id, [(self.event_type, self.event)])

    def record_event(self, session, rows: list[dict[str, Any]] | None = None) -> None:
        """The outcome's ledger event (`rows`, if built beforehand by `event_rows`), and the
        account's need for credentials if the platform refused its token, in the transaction of
        `session` (a session, or the connection `pipeline.finish` writes on; the caller
        commits, with the log's new values)."""
        insert_events(session, self.event_rows() if rows is None else rows)
        account_id = self.facts.social_account_id
        if self.credentials_refused is None or account_id is None:
            return
        marked = connection_of(session).execute(
            update(_ACCOUNTS).where(_ACCOUNTS.c.id == account_id, _ACCOUNTS.c.needs_credentials.is_(False))
            .values(needs_credentials=True, needs_credentials_reason=self.credentials_refused)).rowcount
        if marked:  # not already marked (nor deleted meanwhile)
            record_event(session, "account_needs_credentials", "account", account_id, {
                "platform": self.facts.platform, "error": self.credentials_refused,
                "publish_log_id": self.facts.id,
            })


def forget_kept_account(session, change: OutcomeChange) -> None:
    """Have the session read again the two columns `record_event` may have written with a Core
    UPDATE on its copy of the account, if it holds one; the rest of the copy, and whatever it
    has not flushed yet, stays as it is."""
    if change.credentials_refused is None or change.facts.social_account_id is None:
        return
    kept = session.identity_map.get(session.identity_key(SocialAccount, change.facts.social_account_id))
    if kept is not None:
        session.expire(kept, ["needs_credentials", "needs_credentials_reason"])


_ACCOUNTS = cast(Table, SocialAccount.__table__)


def outcome_change(facts: AttemptFacts, outcome: PlatformOutcome, *, may_retry: bool) -> OutcomeChange:
    """What a platform's answer does to an attempt still in flight (see `record_outcome`)."""
    base = {"platform": facts.platform}
    if outcome.success:
        return OutcomeChange(facts, {
            "status": PublishStatus.SUCCESS.value,
            "external_post_id": outcome.external_post_id,
            "external_url": outcome.external_url,
            "published_at": utcnow(),
            "next_attempt_at": None,
        }, "publish_successful", {
            **base,
            "external_post_id": outcome.external_post_id,
            "external_url": outcome.external_url,
            "publish_log_id": facts.id,
        })
    error = outcome.error_message
    if outcome.error_kind == "unknown":
        return OutcomeChange(facts, {
            "error_message": error, "status": PublishStatus.UNCONFIRMED.value, "next_attempt_at": None,
        }, "publish_unconfirmed", {
            **base, "error": error, "reason": "unknown_outcome", "publish_log_id": facts.id,
        })
    retry_at = next_retry_at(facts.attempts) if may_retry and outcome.error_kind == "transient" else None
    if retry_at is not None and outcome.retry_after:
        retry_at = max(retry_at, utcnow() + timedelta(seconds=outcome.retry_after))
    if retry_at is not None:
        return OutcomeChange(facts, {
            "error_message": error, "status": PublishStatus.QUEUED.value, "next_attempt_at": retry_at,
        }, "publish_retry_scheduled", {
            **base, "error": error, "attempt": facts.attempts, "next_attempt_at": retry_at,
            "publish_log_id": facts.id,
        })
    return OutcomeChange(facts, {
        "error_message": error, "status": PublishStatus.FAILED.value, "next_attempt_at": None,
    }, "publish_failed", {
        **base, "error": error, "publish_log_id": facts.id,
    }, credentials_refused=error if outcome.auth_error else None)


def record_outcome(db, log_row: PublishLog, outcome: PlatformOutcome, *, may_retry: bool) -> None:
    """Write a platform's answer onto the log with its ledger event (the caller commits).

    success -> success; unknown effect -> unconfirmed (a person decides: a duplicate post is
    worse than a late one); transient failure -> queued again when `may_retry` and attempts are
    left; anything else -> failed. A refused token marks the account as needing new credentials.
    """
    if log_row.status not in IN_FLIGHT:
        record_late_answer(db.session, log_row, outcome)
        return
    change = outcome_change(AttemptFacts.of(log_row), outcome, may_retry=may_retry)
    for name, value in change.values.items():
        setattr(log_row, name, value)
    change.record_event(db.session)
    forget_kept_account(db.session, change)


def record_late_answer(session, log_row: PublishLog, outcome: PlatformOutcome) -> None:
    """Put an answer on record that came after its attempt was given up (the sweep judged it
    interrupted, say), keeping the state a person may already be acting on (the caller commits)."""
    record_event(session, "publish_late_answer", "clip", log_row.clip_id, {
        "platform": log_row.platform, "success": outcome.success,
        "external_post_id": outcome.external_post_id, "external_url": outcome.external_url,
        "error": outcome.error_message, "publish_log_id": log_row.id,
    })


def result_of(log_row: PublishLog) -> PublishResult:
    """The API's view of an attempt (final, or a live one still under way)."""
    error = log_row.error_message
    if log_row.status == PublishStatus.UNCONFIRMED.value:
        error = (f"Outcome unknown: {error}. The platform may have published it; check before "
                 "retrying.")
    elif log_row.status not in FINAL_STATUSES:
        error = f"Still publishing ({log_row.step or log_row.status}): see publish log {log_row.id}"
    return PublishResult(
        success=log_row.status == PublishStatus.SUCCESS.value,
        external_post_id=log_row.external_post_id,
        external_url=log_row.external_url,
        error_message=error,
        platform=log_row.platform,
        clip_id=log_row.clip_id,
        social_account_id=log_row.social_account_id,
    )


def get_publish_logs_for_clip(db, clip_id: uuid.UUID) -> list[PublishLog]:
    """Every publish attempt of a clip, most recent first; NotFound for an unknown clip."""
    if db.session.get(Clip, clip_id) is None:
        raise ClipNotFound(clip_id)
    return list(db.session.scalars(
        select(PublishLog)
        .where(PublishLog.clip_id == clip_id)
        .order_by(PublishLog.requested_at.desc(), PublishLog.id.desc())
    ))
