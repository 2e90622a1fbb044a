"""The JSON contract of the publishing engine (pydantic v2); unknown fields are rejected."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    PlainSerializer,
    StringConstraints,
    field_validator,
)
from pydantic_core import PydanticCustomError

from .. import local_times

PlatformName = Literal["instagram", "tiktok", "youtube"]

# Times go out as ISO 8601 UTC with a Z, whatever the database handed back.
UtcTime = Annotated[
    datetime,
    PlainSerializer(
        lambda value: value.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        return_type=str,
        when_used="json",
    ),
]


def _strip_hash(tag: str) -> str:
    return tag.lstrip("#")


Hashtag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^#?[^\s#]+$"),
    AfterValidator(_strip_hash),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IdempotencyHeaders(BaseModel):
    """Headers of the publishing POSTs (documented in the OpenAPI document; other headers pass)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    idempotency_key: str | None = Field(
        default=None, alias="Idempotency-Key", min_length=1, max_length=200,
        description="A repeat with the same key and body returns the first answer and publishes "
                    "nothing; the same key with another body is 409.",
    )


class PublishMetadata(Strict):
    """What is posted with the clip. Platform limits are checked by the engine (rules.py)."""

    caption: str = ""
    hashtags: list[Hashtag] = Field(default_factory=list)


class PublishRequest(Strict):
    """Publish one clip to one platform, optionally through a given account."""

    clip_id: uuid.UUID
    platform: PlatformName
    social_account_id: uuid.UUID | None = None
    metadata: PublishMetadata = Field(default_factory=PublishMetadata)


class PublishResult(BaseModel):
    """The outcome of one publish attempt. `success: false` is a platform failure, not an error."""

    success: bool
    external_post_id: str | None = None
    external_url: str | None = None
    error_message: str | None = None
    platform: PlatformName
    clip_id: uuid.UUID
    social_account_id: uuid.UUID | None = None


class PublishLogOut(BaseModel):
    """One publish attempt as the API shows it."""

    id: uuid.UUID
    clip_id: uuid.UUID
    platform: PlatformName
    social_account_id: uuid.UUID | None
    status: Literal["pending", "scheduled", "queued", "publishing", "success", "failed",
                    "unconfirmed", "cancelled"]
    provider: str | None
    external_post_id: str | None
    external_url: str | None
    error_message: str | None
    caption: str
    hashtags: list[str]
    requested_at: UtcTime
    published_at: UtcTime | None
    scheduled_at: UtcTime | None = None
    attempts: int = 0
    next_attempt_at: UtcTime | None = None
    batch_id: uuid.UUID | None = None
    retry_of_id: uuid.UUID | None = None
    # Live publishing: the step to run next (or running) and the latest platform trace id.
    step: str | None = None
    trace_id: str | None = None
    created_at: UtcTime
    updated_at: UtcTime


class MaybeWhen(Strict):
    """An optional moment given as ISO 8601 with an offset, or as a local time plus an IANA
    `timezone`.

    A time with neither is refused by the service, naming `scheduled_at`; an unknown zone is
    refused here, naming `timezone`. A local time in a daylight-saving gap is refused with the
    nearest valid times; one in an overlap needs `fold` (0: the first, 1: the second) or an
    offset; an offset that `timezone` does not have at that moment is refused.
    """

    # Declared before scheduled_at: its validator reads them.
    timezone: str | None = None
    fold: Literal[0, 1] | None = None
    scheduled_at: datetime | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Paris)") from None
        return value

    @field_validator("scheduled_at")
    @classmethod
    def _read_in_timezone(cls, value: datetime | None, info) -> datetime | None:
        if value is None:
            return value
        if not local_times.time_in_range(value):
            raise PydanticCustomError("out_of_range", local_times.OUT_OF_RANGE)
        name = info.data.get("timezone")
        if name is None:
            return value
        zone = ZoneInfo(name)
        try:
            if value.tzinfo is None:
                return local_times.resolve(value, zone, info.data.get("fold"))
            local_times.check_offset(value, zone)
        except local_times.LocalTimeError as exc:
            raise PydanticCustomError("local_time", str(exc)) from None
        return value


class When(MaybeWhen):
    """A moment (required) given as ISO 8601 with an offset, or as a local time plus `timezone`."""

    scheduled_at: datetime


class ScheduleRequest(When):
    """Publish a clip to one platform at a given time."""

    clip_id: uuid.UUID
    platform: PlatformName
    social_account_id: uuid.UUID | None = None
    metadata: PublishMetadata = Field(default_factory=PublishMetadata)


class RescheduleRequest(When):
    """Move a scheduled post to another time."""


class BatchTarget(Strict):
    """One account of a cross-post; `metadata` replaces the batch's caption for this account."""

    social_account_id: uuid.UUID
    metadata: PublishMetadata | None = None


class BatchRequest(MaybeWhen):
    """Publish a clip to several accounts at once: those listed, and/or main accounts with all
    their satellites (`with_satellites_of`); now, or all at `scheduled_at`."""

    clip_id: uuid.UUID
    metadata: PublishMetadata = Field(default_factory=PublishMetadata)
    targets: list[BatchTarget] = Field(default_factory=list, max_length=200)
    with_satellites_of: list[uuid.UUID] = Field(default_factory=list, max_length=50)


class MarkPublishedRequest(Strict):
    """Confirm that an unconfirmed post went out, optionally with its public URL."""

    external_url: HttpUrl | None = None


class BatchOut(BaseModel):
    id: uuid.UUID
    clip_id: uuid.UUID
    status: Literal["running", "succeeded", "failed", "partial"]
    counts: dict[str, int]
    # One per target: its latest attempt (a retried log's history is in GET /publishing/logs).
    logs: list[PublishLogOut]
    created_at: UtcTime


class RetryRefused(BaseModel):
    """A failed target that "Retry all failed" did not retry, and why (an account deactivated
    since, retried meanwhile by someone else)."""

    log_id: uuid.UUID
    detail: str


class BatchRetryOut(BaseModel):
    """What "Retry all failed" did: one new queued attempt per failed target (each linked to the
    failed one by `retry_of_id`), the failed targets it could not retry, and the batch now."""

    retried: list[PublishLogOut]
    refused: list[RetryRefused]
    batch: BatchOut
