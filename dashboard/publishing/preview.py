"""How a post will look on each platform: the handle, the caption as the platform cuts it, the
YouTube title, and the character counts against each limit (PLATFORM_LIMITS)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..models import PLATFORMS, Clip, SocialAccount
from .rules import compose_caption, utf16_units


@dataclass(frozen=True)
class Count:
    """A length against its limit, in the platform's unit."""

    used: int
    limit: int | None
    unit: str

    @property
    def over(self) -> bool:
        return self.limit is not None and self.used > self.limit


@dataclass(frozen=True)
class PostPreview:
    platform: str
    handle: str | None  # the chosen account's, when it is of this platform
    shown: str  # the caption as the feed shows it before "more"
    cut: bool  # True when the feed cuts the caption (Instagram)
    caption: Count
    title: str | None = None  # YouTube: the clip's title is the video title
    title_count: Count | None = None


MEASURES = {"instagram": "characters", "tiktok": "UTF-16 units", "youtube": "bytes"}
LIMIT_KEYS = {"instagram": "caption_max_chars", "tiktok": "caption_max_chars", "youtube": "description_max_bytes"}


def caption_count(platform: str, text: str, limits: Mapping[str, Mapping]) -> Count:
    """The posted text's length as `platform` counts it (code points, UTF-16 units or UTF-8
    bytes), against its limit."""
    unit = MEASURES[platform]
    if unit == "UTF-16 units":
        used = utf16_units(text)
    elif unit == "bytes":
        used = len(text.encode())
    else:
        used = len(text)
    return Count(used, limits.get(platform, {}).get(LIMIT_KEYS[platform]), unit)


def caption_counts(caption: str, hashtags: list[str], limits: Mapping[str, Mapping]) -> dict[str, Count]:
    """Per platform, the caption with its hashtags against the platform's limit."""
    text = compose_caption(caption, hashtags)
    return {platform: caption_count(platform, text, limits) for platform in PLATFORMS}


def post_previews(clip: Clip, caption: str, hashtags: list[str], account: SocialAccount | None,
                  limits: Mapping[str, Mapping]) -> list[PostPreview]:
    """The post on every platform, as it would go out with this caption and these hashtags."""
    text = compose_caption(caption, hashtags)
    previews = []
    for platform in PLATFORMS:
        rules = limits.get(platform, {})
        handle = account.handle if account is not None and account.platform == platform else None
        if platform == "instagram":
            visible = rules.get("caption_preview_chars") or len(text)
            cut = len(text) > visible
            previews.append(PostPreview(platform, handle, text[:visible].rstrip() if cut else text, cut,
                                        caption_count(platform, text, limits)))
        elif platform == "tiktok":
            previews.append(PostPreview(platform, handle, text, False, caption_count(platform, text, limits)))
        else:
            previews.append(PostPreview(
                platform, handle, text, False, caption_count(platform, text, limits),
                title=clip.title,
                title_count=Count(len(clip.title), rules.get("title_max_chars"), "characters")))
    return previews
