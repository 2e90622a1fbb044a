"""The stub-mode provider client: the seed's two pretend calls behind the real interface.

PROVIDER_MODE=stub (the default) publishes through these: `upload_video_stub` then
`publish_post_stub`, with the platform's id and URL shapes and no network. A client is used only
when `supports_real_api()` is true, i.e. every required credential is present.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ...credentials import missing_keys
from ..outcome import PlatformOutcome, PublishJob


@dataclass(frozen=True)
class PostRef:
    post_id: str
    url: str


class ProviderClient:
    """Common shape of the platform clients; subclasses set `platform` and `name`."""

    platform: str = ""
    name: str = ""

    def __init__(self, credentials: dict[str, str] | None):
        self._credentials = dict(credentials or {})

    def __repr__(self) -> str:  # never show the credentials
        return f"<{type(self).__name__} ready={self.supports_real_api()}>"

    def supports_real_api(self) -> bool:
        """True exactly when every required key is present and non-empty."""
        return not missing_keys(self.platform, self._credentials)

    def upload_video_stub(self, file_path: str, **kw) -> str:
        """Pretend to upload the file; return the platform's id for the uploaded video."""
        raise NotImplementedError

    def publish_post_stub(self, video_id: str, **kw) -> PostRef:
        """Pretend to publish an uploaded video; return the public post id and URL."""
        raise NotImplementedError

    def publish(self, job: PublishJob) -> PlatformOutcome:
        """Upload then publish, the two-step flow every platform has."""
        video_id = self.upload_video_stub(job.media, title=job.clip_title,
                                          duration_seconds=job.duration_seconds)
        post = self.publish_post_stub(video_id, caption=job.caption, hashtags=job.hashtags,
                                      title=job.clip_title, account_handle=job.account_handle)
        return PlatformOutcome(True, external_post_id=post.post_id, external_url=post.url)


def _digits(count: int) -> str:
    return str(uuid.uuid4().int)[:count].rjust(count, "1")
