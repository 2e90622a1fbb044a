"""YouTube Data API v3 (resumable videos.insert).

The stub client (PROVIDER_MODE=stub); the live client and its error table join it here.
"""

from __future__ import annotations

import uuid

from .stub import PostRef, ProviderClient, _digits


class YouTubeDataClient(ProviderClient):
    """YouTube Data API v3: a resumable `videos.insert` upload."""

    platform = "youtube"
    name = "youtube_data_v3"

    def upload_video_stub(self, file_path: str, **kw) -> str:
        return uuid.uuid4().hex[:11]

    def publish_post_stub(self, video_id: str, **kw) -> PostRef:
        # videos.insert publishes as it uploads: the uploaded id is the post id.
        return PostRef(video_id, f"https://www.youtube.com/shorts/{video_id}")
