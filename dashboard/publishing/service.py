"""publish_clip() and get_publish_logs_for_clip(): the engine's service layer.

The same `publish_clip` serves the JSON API, the htmx button, the CLI and background workers; it
never imports flask.request, forms or templates. No transaction or pooled connection is held
across the platform call: committing the pending log returns the connection first, and the outcome
is recorded in a new transaction.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select

from ..credentials import CredentialError, get_account_credentials
from ..errors import InvalidInput, NotFound
from ..ledger import record_event
from ..models import Clip, PublishLog, PublishStatus, SocialAccount, utcnow
from .models import PublishRequest, PublishResult
from .outcome import PlatformOutcome, Publisher, PublishJob
from .providers import PROVIDER_CLIENTS
from .rules import check_publish, compose_caption
from .simulator import PlatformSimulator, SimulatorSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublisherChoice:
    """The publisher for one attempt and the ledger event that explains the choice."""

    publisher: Publisher
    event_type: str  # publish_provider_ready | publish_provider_fallback
    reason: str | None = None  # set on fallback


def choose_publisher(db, platform: str, account: SocialAccount | None) -> PublisherChoice:
    """A provider client when the account has complete, readable credentials, else a simulator."""
    simulator = PlatformSimulator(platform, SimulatorSettings.from_config(current_app.config))

    def fallback(reason: str) -> PublisherChoice:
        return PublisherChoice(simulator, "publish_provider_fallback", reason)

    if account is None:
        return fallback("no_account")
    client_class = PROVIDER_CLIENTS.get(platform)
    if client_class is None:
        return fallback("unsupported_platform")
    try:
        credentials = get_account_credentials(db, account.id)
    except CredentialError:
        return fallback("credential_error")
    if credentials is None:
        return fallback("no_credentials")
    client = client_class(credentials)
    if not client.supports_real_api():
        return fallback("incomplete_config")
    return PublisherChoice(client, "publish_provider_ready")


def _load_target(db, request: PublishRequest) -> tuple[Clip, SocialAccount | None]:
    clip = db.session.get(Clip, request.clip_id)
    if clip is None:
        raise NotFound(f"clip {request.clip_id} does not exist")
    account = None
    if request.social_account_id is not None:
        account = db.session.get(SocialAccount, request.social_account_id)
        if account is None:
            raise NotFound(f"account {request.social_account_id} does not exist")
        if account.platform != request.platform:
            raise InvalidInput.field(
                "social_account_id",
                f"@{account.handle} is a {account.platform} account, not {request.platform}",
            )
        if not account.active:
            raise InvalidInput.field("social_account_id", f"@{account.handle} is inactive")
    errors = check_publish(
        request.platform,
        current_app.config["PLATFORM_LIMITS"].get(request.platform, {}),
        caption=request.metadata.caption,
        hashtags=request.metadata.hashtags,
        clip_title=clip.title,
        duration_seconds=clip.duration_seconds,
    )
    if errors:
        raise InvalidInput("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    return clip, account


def _call_platform(publisher: Publisher, job: PublishJob) -> PlatformOutcome:
    try:
        return publisher.publish(job)
    except Exception as exc:  # a platform failure is a failed publish, never a 500
        log.warning("publisher %s raised %s", publisher.name, type(exc).__name__)
        return PlatformOutcome(False, error_message=str(exc) or type(exc).__name__,
                               error_kind="unknown")


def publish_clip(db, request: PublishRequest) -> PublishResult:
    """Publish a clip to one platform and record the attempt and its every step.

    Raises NotFound (unknown clip or account) or InvalidInput (platform mismatch, inactive
    account, a platform rule broken) before anything is written. A platform failure is not an
    exception: the result says `success: False` with the platform's message.
    """
    session = db.session
    clip, account = _load_target(db, request)
    log_row = PublishLog(
        clip_id=clip.id,
        platform=request.platform,
        social_account_id=account.id if account else None,
        status=PublishStatus.PENDING.value,
        caption=request.metadata.caption,
        hashtags=list(request.metadata.hashtags),
        requested_at=utcnow(),
    )
    session.add(log_row)
    session.flush()
    log_id = log_row.id
    record_event(session, "publish_started", "clip", clip.id, {
        "platform": request.platform,
        "social_account_id": account.id if account else None,
        "publish_log_id": log_id,
    })
    choice = choose_publisher(db, request.platform, account)
    log_row.provider = choice.publisher.name
    if choice.reason is None:
        record_event(session, choice.event_type, "clip", clip.id, {
            "platform": request.platform, "provider": choice.publisher.name, "publish_log_id": log_id,
        })
    else:
        record_event(session, choice.event_type, "clip", clip.id, {
            "platform": request.platform, "reason": choice.reason, "publish_log_id": log_id,
        })
    job = PublishJob(
        platform=request.platform,
        clip_title=clip.title,
        clip_description=clip.description,
        media=clip.media,
        duration_seconds=clip.duration_seconds,
        caption=compose_caption(request.metadata.caption, request.metadata.hashtags),
        hashtags=tuple(request.metadata.hashtags),
        account_handle=account.handle if account else None,
    )
    clip_id = clip.id
    # Committing ends the transaction and returns the connection to the pool before the (slow)
    # platform call. The session is not closed: that would detach the caller's objects (the
    # signed-in user of a page, say) and break them after we return. Nothing below may touch
    # the session until record_outcome.
    session.commit()

    outcome = _call_platform(choice.publisher, job)

    return record_outcome(db, log_id, clip_id, outcome)


def record_outcome(db, log_id: uuid.UUID, clip_id: uuid.UUID, outcome: PlatformOutcome) -> PublishResult:
    """Write a platform's answer onto the log with its ledger event, in one transaction."""
    session = db.session
    log_row = session.get(PublishLog, log_id)
    if outcome.success:
        log_row.status = PublishStatus.SUCCESS.value
        log_row.external_post_id = outcome.external_post_id
        log_row.external_url = outcome.external_url
        log_row.published_at = utcnow()
        record_event(session, "publish_successful", "clip", clip_id, {
            "platform": log_row.platform,
            "external_post_id": outcome.external_post_id,
            "external_url": outcome.external_url,
            "publish_log_id": log_id,
        })
    else:
        log_row.status = PublishStatus.FAILED.value
        log_row.error_message = outcome.error_message
        record_event(session, "publish_failed", "clip", clip_id, {
            "platform": log_row.platform,
            "error": outcome.error_message,
            "publish_log_id": log_id,
        })
    result = result_of(log_row)
    session.commit()
    return result


def result_of(log_row: PublishLog) -> PublishResult:
    """The API's view of a finished attempt."""
    return PublishResult(
        success=log_row.status == PublishStatus.SUCCESS.value,
        external_post_id=log_row.external_post_id,
        external_url=log_row.external_url,
        error_message=log_row.error_message,
        platform=log_row.platform,
        clip_id=log_row.clip_id,
        social_account_id=log_row.social_account_id,
    )


def get_publish_logs_for_clip(db, clip_id: uuid.UUID) -> list[PublishLog]:
    """Every publish attempt of a clip, most recent first; NotFound for an unknown clip."""
    if db.session.get(Clip, clip_id) is None:
        raise NotFound(f"clip {clip_id} does not exist")
    return list(db.session.scalars(
        select(PublishLog)
        .where(PublishLog.clip_id == clip_id)
        .order_by(PublishLog.requested_at.desc(), PublishLog.id.desc())
    ))
