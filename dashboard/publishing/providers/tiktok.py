"""TikTok Content Posting API (Direct Post).

The stub client (PROVIDER_MODE=stub); the live client and its error table join it here.
"""

from __future__ import annotations

from .stub import PostRef, ProviderClient, _digits


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
