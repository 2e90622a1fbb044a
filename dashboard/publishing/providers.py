"""Provider clients, one per platform, in stub mode.

`upload_video_stub` and `publish_post_stub` have the interface the real `upload_video` and
`publish_post` will have, so swapping real calls in changes this module only. A client is used
only when `supports_real_api()` is true, i.e. every required credential is present.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ..credentials import REQUIRED_KEYS, missing_keys
from .outcome import PlatformOutcome, PublishJob


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


class InstagramGraphClient(ProviderClient):
    """Instagram Graph API: a REELS media container, then media_publish."""

    platform = "instagram"
    name = "instagram_graph"

    def upload_video_stub(self, file_path: str, **kw) -> str:
        return _digits(17)  # the container (creation) id

    def publish_post_stub(self, video_id: str, **kw) -> PostRef:
        media_id = "17" + _digits(16)
        shortcode = uuid.uuid4().hex[:11]
        return PostRef(media_id, f"https://www.instagram.com/reel/{shortcode}/")


class TikTokContentClient(ProviderClient):
    """TikTok Content Posting API, Direct Post."""

    platform = "tiktok"
    name = "tiktok_content_posting"

    def upload_video_stub(self, file_path: str, **kw) -> str:
        return f"v_pub_file~v2-1.{_digits(19)}"  # the publish_id

    def publish_post_stub(self, video_id: str, **kw) -> PostRef:
        post_id = "7" + _digits(18)
        username = (kw.get("account_handle") or "creator").lstrip("@")
        return PostRef(post_id, f"https://www.tiktok.com/@{username}/video/{post_id}")


class YouTubeDataClient(ProviderClient):
    """YouTube Data API v3: a resumable `videos.insert` upload."""

    platform = "youtube"
    name = "youtube_data_v3"

    def upload_video_stub(self, file_path: str, **kw) -> str:
        return uuid.uuid4().hex[:11]

    def publish_post_stub(self, video_id: str, **kw) -> PostRef:
        # videos.insert publishes as it uploads: the uploaded id is the post id.
        return PostRef(video_id, f"https://www.youtube.com/shorts/{video_id}")


PROVIDER_CLIENTS: dict[str, type[ProviderClient]] = {
    cls.platform: cls for cls in (InstagramGraphClient, TikTokContentClient, YouTubeDataClient)
}
assert set(PROVIDER_CLIENTS) == set(REQUIRED_KEYS)
