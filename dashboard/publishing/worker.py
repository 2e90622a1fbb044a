"""Background publishing: the tasks the queue runs, and the sweep that keeps logs honest.

Exactly once: a worker may publish a log only after moving it from `scheduled`/`queued` to
`publishing` with one conditional UPDATE; any other worker, a repeated message or a late sweep
finds the row already taken and does nothing. The queue carries ids only.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from flask import Flask, current_app
from huey import crontab
from sqlalchemy import func, or_, select, update

from .. import idempotency
from ..extensions import db
from ..ledger import record_event
from ..linking import ensure_fresh_token, refresh_due
from ..models import WAITING_STATUSES, Clip, PublishLog, PublishStatus, utcnow
from ..ops.logs import current_request_id, request_id_context
from ..ops.metrics import PublishReport
from . import journal, pipeline
from .quotas import quota_state
from .service import (
    lock_account,
    needs_credentials_message,
    needs_reconnect_message,
    rules_broken_now,
)

log = logging.getLogger(__name__)

# A post that starts later than this after its time is reported as late in the ledger.
LATE_AFTER = timedelta(seconds=60)
# Attempts in a platform call: in a worker, or in a web request (the immediate path).
IN_FLIGHT = (PublishStatus.PUBLISHING.value, PublishStatus.PENDING.value)


@dataclass(frozen=True)
class PublishTasks:
    """The tasks registered on one app's queue."""

    publish_log: object
    sweep: object
    refresh_tokens: object


def register_tasks(huey, app: Flask) -> PublishTasks:
    """Register the app's tasks on `huey`; each runs inside `app`'s context."""

    @huey.task(name="publish_log")
    def publish_log_task(log_id: str, request_id: str | None = None):
        # The request id of the request that queued it, so its log lines join that request's.
        with app.app_context(), request_id_context(request_id):
            try:
                run_publish(db, uuid.UUID(log_id))
            finally:
                db.session.remove()

    @huey.periodic_task(crontab(minute="*"), name="sweep_publish_logs")
    def sweep_task():
        with app.app_context(), request_id_context(None):
            try:
                sweep(db)
            finally:
                db.session.remove()

    @huey.periodic_task(crontab(minute="*"), name="refresh_linked_tokens")
    def refresh_tokens_task():
        """Refresh every linked account's token within its refresh-ahead window."""
        with app.app_context():
            try:
                counts = refresh_due(db)
                if counts:
                    log.info("token refresh pass: %s", counts)
            finally:
                db.session.remove()

    return PublishTasks(publish_log_task, sweep_task, refresh_tokens_task)


def enqueue(log_id: uuid.UUID, eta=None) -> None:
    """Hand a log to the queue, now or at `eta`. Call after the log is committed.

    A failure to enqueue loses nothing: the log is in the database and the sweep finds it.
    """
    task = current_app.extensions["publish_tasks"].publish_log
    # Carried as a keyword: the message's args stay the log id alone.
    context = {"request_id": current_request_id()}
    try:
        if eta is not None and eta > utcnow():
            task.schedule(args=(str(log_id),), kwargs=context, eta=eta)
        else:
            task(str(log_id), **context)
    except Exception:
        log.exception("could not enqueue publish log %s; the sweep will pick it up", log_id)


def claim(db, log_id: uuid.UUID) -> bool:
    """Move a due log from scheduled/queued to publishing; False if someone else has it."""
    now = utcnow()
    result = db.session.execute(
        update(PublishLog)
        .where(
            PublishLog.id == log_id,
            PublishLog.status.in_(WAITING_STATUSES),
            or_(PublishLog.next_attempt_at.is_(None), PublishLog.next_attempt_at <= now),
        )
        .values(status=PublishStatus.PUBLISHING.value, started_at=now,
                attempts=PublishLog.attempts + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def run_publish(db, log_id: uuid.UUID) -> None:
    """Publish one queued log, if it is still due and nobody else took it (the task's body)."""
    session = db.session
    found = session.execute(
        select(PublishLog.social_account_id, PublishLog.status, PublishLog.step)
        .where(PublishLog.id == log_id)
    ).first()
    if found is not None and found.step is not None and found.status not in WAITING_STATUSES:
        # A live attempt between steps, handed off by a page, or due to be reconciled: it
        # continues from its last written step (the runner claims the step, so a repeated
        # message does nothing).
        session.rollback()
        pipeline.resume(db, log_id)
        return
    if found is None or found.status not in WAITING_STATUSES:
        # A repeated or stale message: nothing to do, and no account lock to take (on
        # PostgreSQL that lock could deadlock with a person retrying this very log).
        session.rollback()
        return
    account_id = found.social_account_id
    session.rollback()
    # A linked token near its expiry is refreshed before the attempt (its own transactions).
    ensure_fresh_token(db, account_id)
    account = lock_account(db, account_id)  # read under the lock: as fresh as the claim
    previous_status = session.scalar(select(PublishLog.status).where(PublishLog.id == log_id))
    if not claim(db, log_id):
        session.rollback()
        return
    log_row = session.get(PublishLog, log_id, populate_existing=True)
    clip = session.get(Clip, log_row.clip_id, populate_existing=True)
    now = log_row.started_at

    message: str | None
    if account is not None and (not account.active or account.needs_credentials
                                or account.needs_reconnect):
        if account.needs_credentials:
            message = needs_credentials_message(account)
        elif account.needs_reconnect:
            message = needs_reconnect_message(account)
        else:
            message = f"@{account.handle} is inactive"
    else:
        message = rules_broken_now(log_row, clip)
    if message is not None:
        log_row.status = PublishStatus.FAILED.value
        log_row.error_message = message
        record_event(session, "publish_failed", "clip", clip.id, {
            "platform": log_row.platform, "error": message, "publish_log_id": log_row.id,
        })
        report = PublishReport.of(log_row)
        session.commit()
        report.report()
        return
    if account is not None:
        quota = quota_state(session, account, now, exclude_log_id=log_row.id)
        if quota.exhausted:
            # Not an attempt: wait for the window, keeping the state it had.
            log_row.status = previous_status
            log_row.attempts -= 1
            log_row.started_at = None
            log_row.next_attempt_at = quota.next_slot
            record_event(session, "publish_deferred", "clip", clip.id, {
                "platform": log_row.platform, "reason": "quota", "used": quota.used,
                "limit": quota.limit, "until": quota.next_slot, "publish_log_id": log_row.id,
            })
            session.commit()
            enqueue(log_id, quota.next_slot)
            return

    started = {"platform": log_row.platform, "social_account_id": log_row.social_account_id,
               "publish_log_id": log_row.id, "attempt": log_row.attempts}
    due = log_row.scheduled_at
    if due is not None and log_row.attempts == 1 and now - due > LATE_AFTER:
        started["late_by_seconds"] = round((now - due).total_seconds())
    attempt = pipeline.start(db, log_row, clip, account, started)
    session.commit()
    session.close()  # no connection held across the platform call

    pipeline.run(db, attempt, may_retry=True)


def sweep(db, requeue_grace: float | None = None) -> dict[str, int]:
    """Keep the logs honest after crashes and downtime (runs every minute and at worker start).

    - a log stuck in `publishing` past PUBLISH_TIMEOUT_SECONDS was interrupted: it becomes
      `unconfirmed` (a platform may have received it; a person decides), never retried blindly;
      so does a `pending` one (an immediate publish whose web process died in the call);
    - a scheduled or queued log overdue by REQUEUE_GRACE_SECONDS is handed to the queue again
      (its message may have been lost, e.g. taken by a worker that was killed before claiming
      it); claiming makes a repeat harmless.
    """
    session = db.session
    # First the answers the database could not take earlier: those logs are resolved from what
    # the platform said, not given up as interrupted.
    journaled = journal.replay(db)
    now = utcnow()
    timeout = timedelta(seconds=current_app.config["PUBLISH_TIMEOUT_SECONDS"])
    # Re-enqueue only logs overdue by this much: younger ones are most likely still queued.
    # (None: the setting; 0 right after the queue came back, when every due message may be lost.)
    grace_seconds = current_app.config["REQUEUE_GRACE_SECONDS"] if requeue_grace is None else requeue_grace
    grace = timedelta(seconds=grace_seconds)
    began = func.coalesce(PublishLog.started_at, PublishLog.requested_at)
    # Live attempts (a `step`) are resumed, not given up: pipeline.sweep_live below.
    stuck = list(session.scalars(
        select(PublishLog).where(PublishLog.status.in_(IN_FLIGHT), PublishLog.step.is_(None),
                                 began < now - timeout)
    ))
    interrupted = 0
    for log_row in stuck:
        who = "worker" if log_row.status == PublishStatus.PUBLISHING.value else "web request"
        changed = session.execute(
            update(PublishLog)
            .where(PublishLog.id == log_row.id, PublishLog.status == log_row.status,
                   PublishLog.started_at == log_row.started_at)
            .values(status=PublishStatus.UNCONFIRMED.value, updated_at=now, next_attempt_at=None,
                    error_message=f"interrupted: the {who} stopped during the platform call")
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed:
            interrupted += 1
            record_event(session, "publish_interrupted", "clip", log_row.clip_id, {
                "platform": log_row.platform, "publish_log_id": log_row.id,
                "started_at": log_row.started_at, "attempt": log_row.attempts,
            })
    expired_keys = idempotency.delete_expired(db, current_app.config["IDEMPOTENCY_KEY_TTL_SECONDS"], now)
    session.commit()
    due_ids = list(session.scalars(
        select(PublishLog.id).where(
            PublishLog.status.in_(WAITING_STATUSES),
            PublishLog.next_attempt_at <= now - grace,
        )
    ))
    session.commit()
    for log_id in due_ids:
        enqueue(log_id)
    live = pipeline.sweep_live(db, requeue_grace=grace_seconds)
    return {"interrupted": interrupted, "requeued": len(due_ids) + live["requeued_live"],
            "resumed": live["resumed"], "expired_keys": expired_keys, "journaled": journaled}
