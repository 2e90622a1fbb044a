"""The /publishing JSON blueprint: publish now or later, cross-post, cancel, retry, read logs."""

from __future__ import annotations

from flask import Blueprint, g, url_for

from .. import idempotency
from ..api.auth import authenticate, require_role
from ..api.idempotency import idempotent
from ..api.spec import responses, spec
from ..api.views import json_of, parse_id
from ..errors import Conflict
from ..extensions import db
from ..models import FINAL_STATUSES
from . import background
from .models import (
    BatchOut,
    BatchRequest,
    BatchRetryOut,
    IdempotencyHeaders,
    MarkPublishedRequest,
    PublishLogOut,
    PublishRequest,
    PublishResult,
    RescheduleRequest,
    RetryRefused,
    ScheduleRequest,
)
from .service import get_publish_logs_for_clip, publish_now, result_of

bp = Blueprint("publishing", __name__, url_prefix="/publishing")
bp.before_request(authenticate)


def log_out(log_row) -> PublishLogOut:
    return PublishLogOut.model_validate(log_row, from_attributes=True)


def publish_in_flight(reserved: idempotency.InFlight):
    """A repeat of a publish that never answered (its request was killed, or is still running):
    the result once its log is final, unconfirmed included (stored, so later repeats replay it);
    while it is not, 202 with the log to follow, as a live publish past its sync wait answers.
    Never a second publish."""
    log_row = background.get_log(db, reserved.log_id)
    if log_row.status not in FINAL_STATUSES:
        return (log_out(log_row).model_dump(mode="json"), 202,
                {"Location": url_for("publishing.attempt", log_id=log_row.id)})
    body = result_of(log_row).model_dump(mode="json")
    idempotency.finish(db, reserved.record_id, 200, body)
    return body, 200


def log_in_flight(reserved: idempotency.InFlight):
    """A repeat of a schedule or retry that never answered: the log it created, as it is now."""
    return log_out(background.get_log(db, reserved.log_id)).model_dump(mode="json"), 202


def batch_in_flight(reserved: idempotency.InFlight):
    """A repeat of a cross-post that never answered: the batch it created, as it is now."""
    return batch_out(background.get_batch(db, reserved.created_batch_id)).model_dump(mode="json"), 202


def batch_out(batch) -> BatchOut:
    summary = background.summarize_batch(batch)
    return BatchOut(id=batch.id, clip_id=batch.clip_id, status=summary.status, counts=summary.counts,
                    logs=[log_out(row) for row in background.current_logs(batch)],
                    created_at=batch.created_at)


@bp.post("/publish")
@require_role("editor")
@idempotent(answer_in_flight=publish_in_flight)
@spec.validate(headers=IdempotencyHeaders, json=PublishRequest,
               resp=responses(200, PublishResult, 400, 404, 409, 429, also={202: PublishLogOut}),
               tags=["publishing"])
def publish(json: PublishRequest):
    """Publish a clip now. A platform failure is a 200 with `success: false` and its message.

    A live publish still processing after PUBLISH_SYNC_WAIT seconds answers 202 with its log
    (a PublishLogOut); `Location` is the log's URL, to poll until its status is final.
    """
    attempt = publish_now(db, json)
    if attempt.done:
        return json_of(attempt.result)
    return json_of(log_out(background.get_log(db, attempt.log_id)), 202,
                   Location=url_for("publishing.attempt", log_id=attempt.log_id))


@bp.get("/attempts/<log_id>")
@require_role("viewer")
@spec.validate(resp=responses(200, PublishLogOut, 400, 404), tags=["publishing"])
def attempt(log_id: str):
    """One publish attempt (its log): follow a 202 here until its status is final."""
    return json_of(log_out(background.get_log(db, parse_id(log_id, "log_id"))))


@bp.post("/schedule")
@require_role("editor")
@idempotent(answer_in_flight=log_in_flight)
@spec.validate(headers=IdempotencyHeaders, json=ScheduleRequest, resp=responses(202, PublishLogOut, 400, 404, 409),
               tags=["publishing"])
def schedule(json: ScheduleRequest):
    """Publish a clip at `scheduled_at` (with an offset, or a local time and `timezone`)."""
    target = background.Target(json.platform, json.social_account_id, json.metadata.caption,
                               json.metadata.hashtags)
    log_row = background.schedule_publish(db, json.clip_id, target, json.scheduled_at)
    return json_of(log_out(log_row), 202)


@bp.post("/batches")
@require_role("editor")
@idempotent(answer_in_flight=batch_in_flight)
@spec.validate(headers=IdempotencyHeaders, json=BatchRequest, resp=responses(202, BatchOut, 400, 404, 409),
               tags=["publishing"])
def create_batch(json: BatchRequest):
    """Cross-post a clip to several accounts at once; each target gets its own log. With
    `scheduled_at` every target is scheduled for that moment instead of queued now."""
    own = {t.social_account_id: (t.metadata.caption, t.metadata.hashtags) for t in json.targets if t.metadata}
    targets = background.batch_targets(db, [t.social_account_id for t in json.targets], json.with_satellites_of,
                                       (json.metadata.caption, json.metadata.hashtags), own)
    batch = background.create_batch(db, json.clip_id, targets, created_by_id=g.api_user.id,
                                    scheduled_at=json.scheduled_at)
    return json_of(batch_out(batch), 202)


@bp.get("/batches/<batch_id>")
@require_role("viewer")
@spec.validate(resp=responses(200, BatchOut, 400, 404), tags=["publishing"])
def get_batch(batch_id: str):
    """A cross-post and its targets: running, then succeeded, failed or partial."""
    return json_of(batch_out(background.get_batch(db, parse_id(batch_id, "batch_id"))))


def batch_retry_in_flight(reserved: idempotency.InFlight):
    """A repeat of a "Retry all failed" that never answered: the batch as it is now, with the
    retries made since its first retry (the one its key is linked to)."""
    first = background.get_log(db, reserved.log_id)
    assert first.batch_id is not None  # background.retry keeps a target's retry in its batch
    batch = background.get_batch(db, first.batch_id)
    retried = [row for row in background.current_logs(batch)
               if row.retry_of_id is not None and row.requested_at >= first.requested_at]
    return BatchRetryOut(retried=[log_out(row) for row in retried], refused=[],
                         batch=batch_out(batch)).model_dump(mode="json"), 202


@bp.post("/batches/<batch_id>/retry-failed")
@require_role("editor")
@idempotent(answer_in_flight=batch_retry_in_flight)
@spec.validate(headers=IdempotencyHeaders, resp=responses(202, BatchRetryOut, 400, 404, 409), tags=["publishing"])
def retry_failed(batch_id: str):
    """Retry all failed targets of a cross-post: each through the one retry of
    `POST /publishing/logs/<id>/retry` (once, linked by `retry_of_id`, kept in the batch).

    202 with the retries queued and the failed targets refused (with why); 409 when no target's
    latest attempt has failed (unconfirmed ones are retried one by one, after checking the
    platform) or when every failed target was refused.
    """
    batch_uuid = parse_id(batch_id, "batch_id")
    queued, refused = background.retry_failed(db, batch_uuid)
    refusals = [RetryRefused(log_id=log_id, detail=detail) for log_id, detail in refused.items()]
    if not queued:
        if refusals:
            raise Conflict("no failed target could be retried: "
                           + "; ".join(f"publish log {r.log_id}: {r.detail}" for r in refusals))
        raise Conflict(f"nothing to retry: no target of batch {batch_uuid} has failed")
    batch = background.get_batch(db, batch_uuid)
    return json_of(BatchRetryOut(retried=[log_out(row) for row in queued], refused=refusals,
                                 batch=batch_out(batch)), 202)


@bp.post("/logs/<log_id>/cancel")
@require_role("editor")
@idempotent
@spec.validate(headers=IdempotencyHeaders, resp=responses(200, PublishLogOut, 400, 404, 409), tags=["publishing"])
def cancel(log_id: str):
    """Cancel a scheduled or queued post before it starts (409 once it has)."""
    return json_of(log_out(background.cancel(db, parse_id(log_id, "log_id"))))


@bp.post("/logs/<log_id>/reschedule")
@require_role("editor")
@idempotent
@spec.validate(headers=IdempotencyHeaders, json=RescheduleRequest, resp=responses(200, PublishLogOut, 400, 404, 409),
               tags=["publishing"])
def reschedule(log_id: str, json: RescheduleRequest):
    """Move a scheduled post to another time before it starts."""
    return json_of(log_out(background.reschedule(db, parse_id(log_id, "log_id"), json.scheduled_at)))


@bp.post("/logs/<log_id>/retry")
@require_role("editor")
@idempotent(answer_in_flight=log_in_flight)
@spec.validate(headers=IdempotencyHeaders, resp=responses(202, PublishLogOut, 400, 404, 409), tags=["publishing"])
def retry(log_id: str):
    """Retry a failed or unconfirmed post: a new queued attempt."""
    return json_of(log_out(background.retry(db, parse_id(log_id, "log_id"))), 202)


@bp.post("/logs/<log_id>/mark-published")
@require_role("editor")
@idempotent
@spec.validate(headers=IdempotencyHeaders, json=MarkPublishedRequest, resp=responses(200, PublishLogOut, 400, 404, 409),
               tags=["publishing"])
def mark_published(log_id: str, json: MarkPublishedRequest):
    """Confirm that an unconfirmed post did go out."""
    url = str(json.external_url) if json.external_url else None
    return json_of(log_out(background.mark_published(db, parse_id(log_id, "log_id"), url)))


@bp.get("/logs/<clip_id>")
@require_role("viewer")
@spec.validate(resp=responses(200, list[PublishLogOut], 400, 404), tags=["publishing"])
def logs(clip_id: str):
    """Every publish attempt of a clip, most recent first."""
    rows = get_publish_logs_for_clip(db, parse_id(clip_id, "clip_id"))
    return [log_out(row).model_dump(mode="json") for row in rows], 200
