"""Provider clients, one module per platform: its stub client, its live client, its error table.

`PROVIDER_CLIENTS` are the stub-mode clients (PROVIDER_MODE=stub, the default): the seed's
`upload_video_stub`/`publish_post_stub`. `LIVE_CLIENTS` are the live clients (PROVIDER_MODE=live),
which speak each platform's protocol over httpx as resumable steps (see base.py). Either is used
only when `supports_real_api()` is true for the account's credentials (every required key set).
"""

from __future__ import annotations

from ...credentials import REQUIRED_KEYS
from .base import LiveClient
from .instagram import InstagramGraphClient, InstagramLiveClient
from .stub import PostRef, ProviderClient
from .tiktok import TikTokContentClient, TikTokLiveClient
from .youtube import YouTubeDataClient, YouTubeLiveClient

PROVIDER_CLIENTS: dict[str, type[ProviderClient]] = {
    cls.platform: cls for cls in (InstagramGraphClient, TikTokContentClient, YouTubeDataClient)
}
assert set(PROVIDER_CLIENTS) == set(REQUIRED_KEYS)

# Filled in as each platform's live client lands (platform -> class).
LIVE_CLIENTS: dict[str, type[LiveClient]] = {}
LIVE_CLIENTS[InstagramLiveClient.platform] = InstagramLiveClient
LIVE_CLIENTS[TikTokLiveClient.platform] = TikTokLiveClient
LIVE_CLIENTS[YouTubeLiveClient.platform] = YouTubeLiveClient

__all__ = ["LIVE_CLIENTS", "PROVIDER_CLIENTS", "InstagramGraphClient", "InstagramLiveClient",
           "LiveClient", "PostRef", "ProviderClient", "TikTokContentClient", "YouTubeDataClient",
           "YouTubeLiveClient"]
