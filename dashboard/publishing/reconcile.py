"""Settle a live attempt whose outcome is unknown by asking the platform.

An outcome is unknown when the final call timed out or its worker died inside it: the post may be
live. Instead of leaving it to a person first, the worker asks the platform through the client's
`reconcile(job, state)` (Instagram: the container's `status_code`; TikTok: `status/fetch` on the
publish id; YouTube: the upload session) and settles the attempt with the evidence in the ledger
(`publish_reconciled`):

- published -> success, with the post's id and URL;
- safely not published -> failed, or retried when the reason is transient; a retry starts from
  the first step with fresh platform objects (nothing of the old ones was published);
- the platform cannot tell -> `unconfirmed`, asked again later (RECONCILE_INTERVAL_SECONDS,
  doubling, at most RECONCILE_MAX_CHECKS times) by the worker's sweep; a person may decide
  meanwhile (Mark as published, Retry anyway).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from flask import current_app

from ..ledger import record_event
from ..models import PublishLog, PublishStatus, utcnow
from ..ops.metrics import PublishReport
from . import service
from .outcome import PlatformOutcome
from .providers.base import FIRST_STEP, LiveClient, LiveJob, ProviderError

log = logging.getLogger(__name__)

# Not a client step: the next thing to do for the attempt is to ask the platform about it.
RECONCILE_STEP = "reconcile"


def ask_platform(client: LiveClient, job: LiveJob,
                 state: dict[str, Any]) -> tuple[PlatformOutcome | None, dict[str, Any]]:
    """The client's answer about an attempt, and what went wrong asking (no secret in it)."""
    try:
        return client.reconcile(job, dict(state)), {}
    except ProviderError as exc:
        evidence = {"error": exc.message, "kind": exc.kind, "code": exc.code}
        if exc.trace_id:
            evidence["trace_id"] = exc.trace_id
        return None, evidence
    except Exception as exc:  # network trouble or a client bug: the platform did not tell
        log.warning("reconcile of %s raised %s", job.log_id, type(exc).__name__)
        return None, {"error": type(exc).__name__}


def settle(db, log_id: uuid.UUID, client: LiveClient, job: LiveJob, state: dict[str, Any],
           token: datetime, *, may_retry: bool, reason: str) -> None:
    """Ask the platform about an attempt whose step claim `token` the caller holds, and record
    what it said (commits). `reason` says why the outcome was unknown."""
    outcome, evidence = ask_platform(client, job, state)
    session = db.session
    log_row = session.get(PublishLog, log_id, with_for_update=True, populate_existing=True)
    if log_row.step_started_at != token:
        session.rollback()  # another runner took the attempt over meanwhile
        return
    recheck = log_row.step == RECONCILE_STEP and log_row.reconcile_checks > 0
    result = "unknown" if outcome is None else "published" if outcome.success else "not_published"
    metadata = {"platform": log_row.platform, "publish_log_id": log_row.id, "result": result,
                "reason": reason, "step": log_row.step, "check": log_row.reconcile_checks + 1,
                # The platform ids it was asked about (not the whole state: upload URLs may
                # carry the platform's upload token).
                "asked_about": {key: value for key, value in state.items()
                                if key.endswith("_id") and isinstance(value, str)}, **evidence}
    if outcome is not None:
        metadata.update(external_post_id=outcome.external_post_id,
                        external_url=outcome.external_url, platform_error=outcome.error_message)
    record_event(session, "publish_reconciled", "clip", log_row.clip_id, metadata)
    log_row.step_started_at = None
    if outcome is None:
        config = current_app.config
        log_row.reconcile_checks += 1
        log_row.step = RECONCILE_STEP
        if recheck:
            log_row.status = PublishStatus.UNCONFIRMED.value  # still unknown: no new event
        else:
            service.record_outcome(db, log_row, PlatformOutcome(
                False, error_message=reason, error_kind="unknown"), may_retry=False)
        checks = log_row.reconcile_checks
        if log_row.status == PublishStatus.UNCONFIRMED.value and checks < config["RECONCILE_MAX_CHECKS"]:
            delay = config["RECONCILE_INTERVAL_SECONDS"] * 2 ** (checks - 1)
            log_row.next_attempt_at = utcnow() + timedelta(seconds=delay)
        else:
            log_row.next_attempt_at = None
    elif outcome.success:
        service.record_outcome(db, log_row, outcome, may_retry=False)
    else:
        log_row.step = FIRST_STEP
        log_row.platform_state = {}
        service.record_outcome(db, log_row, outcome, may_retry=may_retry)
    if recheck and outcome is None:
        session.commit()  # it was unconfirmed and still is: nothing new to report
        return
    report = PublishReport.of(log_row)
    retry_at = log_row.next_attempt_at if log_row.status == PublishStatus.QUEUED.value else None
    session.commit()
    report.report()
    if retry_at is not None:
        from .worker import enqueue

        enqueue(log_id, retry_at)
