"""The JSON contract of the publishing engine (pydantic v2); unknown fields are rejected."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from datetime import timezone

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints

PlatformName = Literal["instagram", "tiktok", "youtube"]

# Times go out as ISO 8601 UTC with a Z, whatever the database handed back.
UtcTime = Annotated[
    datetime,
    PlainSerializer(
        lambda value: value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
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
    status: Literal["pending", "success", "failed"]
    provider: str | None
    external_post_id: str | None
    external_url: str | None
    error_message: str | None
    caption: str
    hashtags: list[str]
    requested_at: UtcTime
    published_at: UtcTime | None
    created_at: UtcTime
    updated_at: UtcTime
