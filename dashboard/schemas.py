"""The JSON contract of clips, accounts and the ledger (pydantic v2); unknown fields are rejected."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from .local_times import OUT_OF_RANGE, time_in_range
from .publishing.models import PlatformName, UtcTime

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Media = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Handle = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^@?[\w.\-]+$"),
]
Duration = Annotated[float, Field(gt=0, le=4 * 3600)]


def _assume_utc(value: datetime) -> datetime:
    """A time given without an offset is read as UTC, the only zone the dashboard speaks; one
    at the ends of the calendar (it would overflow in UTC) is refused."""
    if not time_in_range(value):
        raise ValueError(OUT_OF_RANGE)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


QueryTime = Annotated[datetime, AfterValidator(_assume_utc)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClipIn(Strict):
    title: Title
    description: Annotated[str, Field(max_length=5000)] = ""
    media: Media
    duration_seconds: Duration | None = None


class ClipPatch(Strict):
    title: Title | None = None
    description: Annotated[str, Field(max_length=5000)] | None = None
    media: Media | None = None
    duration_seconds: Duration | None = None
    # The cover frame of an uploaded video, in ms from its start (the thumbnail is remade).
    cover_offset_ms: Annotated[int, Field(ge=0)] | None = None


class ClipUploadFields(Strict):
    """The clip's fields beside the `file` part of a multipart `POST /api/clips`."""

    title: Title
    description: Annotated[str, Field(max_length=5000)] = ""


class MediaOut(BaseModel):
    """A clip's video: probed facts for an upload; `url` alone (the string) for a URL clip."""

    source: Literal["upload", "url"]
    url: str | None
    thumbnail_url: str | None = None
    filename: str | None = None
    content_type: str | None = None
    size_bytes: int | None = None
    duration_seconds: float | None = None
    width: int | None = None
    height: int | None = None
    frame_rate: float | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    container: str | None = None
    bit_rate: int | None = None
    audio_channels: int | None = None
    audio_sample_rate: int | None = None
    cover_offset_ms: int | None = None
    uploaded_at: UtcTime | None = None


class BrokenRule(BaseModel):
    field: str
    message: str


class PlatformFit(BaseModel):
    """Whether the clip, as it is, can go to a platform (caption rules aside)."""

    ok: bool
    errors: list[BrokenRule]


class ClipOut(BaseModel):
    id: uuid.UUID
    title: str
    description: str
    media: MediaOut
    duration_seconds: float | None
    platforms: dict[str, PlatformFit]
    created_at: UtcTime
    updated_at: UtcTime


class ClipQuery(Strict):
    q: Annotated[str, Field(max_length=200)] | None = None
    cursor: str | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50


class ClipPage(BaseModel):
    items: list[ClipOut]
    next_cursor: str | None


class AccountIn(Strict):
    platform: PlatformName
    handle: Handle
    display_name: Annotated[str, Field(max_length=200)] = ""
    parent_account_id: uuid.UUID | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    active: bool = True


class AccountPatch(Strict):
    handle: Handle | None = None
    display_name: Annotated[str, Field(max_length=200)] | None = None
    parent_account_id: uuid.UUID | None = None
    config: dict[str, Any] | None = None
    active: bool | None = None


class AccountConnectionOut(BaseModel):
    """How an account linked by OAuth stands (never a token): who, until when, which scopes."""

    connected_as: str | None
    external_id: str | None
    token_expires_at: UtcTime | None
    refresh_expires_at: UtcTime | None
    token_refreshed_at: UtcTime | None
    granted_scopes: list[str] | None
    missing_scopes: list[str]
    needs_reconnect: bool
    needs_reconnect_reason: str | None


class AccountOut(BaseModel):
    id: uuid.UUID
    platform: PlatformName
    handle: str
    display_name: str
    parent_account_id: uuid.UUID | None
    config: dict[str, Any]
    active: bool
    credentials: Literal["none", "incomplete", "complete", "unreadable"]
    credential_keys_set: list[str]
    # Set when the platform refused the account's token; cleared when credentials are saved.
    needs_credentials: bool = False
    needs_credentials_reason: str | None = None
    # Set for an account linked by OAuth (Connect on the accounts page), else null.
    connection: AccountConnectionOut | None = None
    created_at: UtcTime
    updated_at: UtcTime


class AccountList(BaseModel):
    items: list[AccountOut]


class CredentialsIn(BaseModel):
    """The platform's credential keys and their values (write-only)."""

    model_config = ConfigDict(extra="allow")

    def values(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class CredentialsOut(BaseModel):
    account_id: uuid.UUID
    credentials: Literal["none", "incomplete", "complete", "unreadable"]
    credential_keys_set: list[str]
    missing: list[str]


class LedgerQuery(Strict):
    event_type: Annotated[str, Field(max_length=50)] | None = None
    entity_type: Annotated[str, Field(max_length=50)] | None = None
    entity_id: uuid.UUID | None = None
    since: QueryTime | None = None
    until: QueryTime | None = None
    cursor: str | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50


class LedgerEventOut(BaseModel):
    id: uuid.UUID
    event_type: str
    entity_type: str
    entity_id: uuid.UUID
    metadata: dict[str, Any]
    created_at: UtcTime


class LedgerPage(BaseModel):
    items: list[LedgerEventOut]
    next_cursor: str | None


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, str]] | None = None


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    database: Literal["ok", "unreachable"]
