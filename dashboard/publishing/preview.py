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
                                        Count(len(text), rules.get("caption_max_chars"), "characters")))
        elif platform == "tiktok":
            previews.append(PostPreview(platform, handle, text, False,
                                        Count(utf16_units(text), rules.get("caption_max_chars"), "UTF-16 units")))
        else:
            previews.append(PostPreview(
                platform, handle, text, False,
                Count(len(text.encode()), rules.get("description_max_bytes"), "bytes"),
                title=clip.title,
                title_count=Count(len(clip.title), rules.get("title_max_chars"), "characters")))
    return previews
