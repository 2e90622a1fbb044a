"""What a platform call gives back, whoever made it (simulator or provider client)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

# transient: nothing was posted and a later try may pass; permanent: a person must fix something;
# unknown: the platform may have accepted the post (a lost answer), so never retry blindly.
ErrorKind = Literal["transient", "permanent", "unknown"]


@dataclass(frozen=True)
class PublishJob:
    """Plain values a publisher needs; no ORM object crosses the platform call."""

    platform: str
    clip_title: str
    clip_description: str
    media: str
    duration_seconds: float | None
    caption: str
    hashtags: tuple[str, ...]
    account_handle: str | None


@dataclass(frozen=True)
class PlatformOutcome:
    success: bool
    external_post_id: str | None = None
    external_url: str | None = None
    error_message: str | None = None
    error_kind: ErrorKind | None = None
    # True when the platform refused the account's token: the account needs new credentials.
    auth_error: bool = False
    # Seconds the platform asked us to wait before trying again (a retry waits at least this).
    retry_after: float | None = None


class Publisher(Protocol):
    """Anything that can put a clip on a platform: a provider client or a simulator."""

    name: str

    def publish(self, job: PublishJob) -> PlatformOutcome: ...
