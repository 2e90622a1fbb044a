"""Per-platform checks made before any platform call, with the broken rule named.

Limits come from the PLATFORM_LIMITS setting (defaults in config.py, facts in
shared/platforms.md). An uploaded video's probed facts are checked too (dashboard/media/rules.py).
"""

from __future__ import annotations

import re

from ..errors import FieldError
from ..media.probe import MediaFacts
from ..media.rules import check_media
from ..models import platform_name

_INLINE_HASHTAG = re.compile(r"(?<!\w)#\w+")
_MENTION = re.compile(r"(?<!\w)@[\w.]+")


def compose_caption(caption: str, hashtags: list[str] | tuple[str, ...]) -> str:
    """The text posted: the caption, then the hashtags on their own line."""
    tags = " ".join(f"#{tag}" for tag in hashtags)
    if not tags:
        return caption
    return f"{caption}\n\n{tags}" if caption else tags


def utf16_units(text: str) -> int:
    """Length as TikTok counts it."""
    return len(text.encode("utf-16-le")) // 2


def check_publish(
    platform: str,
    limits: dict[str, int],
    *,
    caption: str,
    hashtags: list[str],
    clip_title: str,
    duration_seconds: float | None,
    media: MediaFacts | None = None,
) -> list[FieldError]:
    """Every rule of `platform` the post breaks; empty when it may be sent.

    `media` is the clip's probed video (None for a clip that is only a URL string).
    """
    errors: list[FieldError] = []
    text = compose_caption(caption, hashtags)
    all_tags = set(hashtags) | {tag[1:] for tag in _INLINE_HASHTAG.findall(caption)}

    def over(field: str, what: str, value: int, limit: int | None, unit: str):
        if limit is not None and value > limit:
            errors.append(FieldError(field, f"{what} {value} {unit}; {platform_name(platform)} allows at most {limit}"))

    if platform == "instagram":
        over("metadata.caption", "the caption with its hashtags is", len(text),
             limits.get("caption_max_chars"), "characters")
        over("metadata.hashtags", "the post has", len(all_tags), limits.get("hashtags_max"), "hashtags")
        over("metadata.caption", "the caption has", len(_MENTION.findall(caption)),
             limits.get("mentions_max"), "@-mentions")
    elif platform == "tiktok":
        over("metadata.caption", "the caption with its hashtags is", utf16_units(text),
             limits.get("caption_max_chars"), "UTF-16 code units")
    elif platform == "youtube":
        over("clip.title", "the clip's title (the video title) is", len(clip_title),
             limits.get("title_max_chars"), "characters")
        if "<" in clip_title or ">" in clip_title:
            errors.append(FieldError("clip.title", "YouTube titles may not contain < or >"))
        over("metadata.caption", "the description (caption and hashtags) is", len(text.encode()),
             limits.get("description_max_bytes"), "bytes")
        if "<" in text or ">" in text:
            errors.append(FieldError("metadata.caption", "YouTube descriptions may not contain < or >"))
        over("metadata.hashtags", "the tags take", sum(len(t) for t in hashtags) + max(len(hashtags) - 1, 0),
             limits.get("tags_max_chars"), "characters")

    if duration_seconds is not None:
        low, high = limits.get("duration_min_seconds"), limits.get("duration_max_seconds")
        if low is not None and duration_seconds < low:
            errors.append(FieldError("clip.duration_seconds", f"the clip lasts {duration_seconds:g} s; "
                                     f"{platform_name(platform)} needs at least {low} s"))
        if high is not None and duration_seconds > high:
            errors.append(FieldError("clip.duration_seconds", f"the clip lasts {duration_seconds:g} s; "
                                     f"{platform_name(platform)} allows at most {high} s"))
    if media is not None:
        errors.extend(check_media(platform, limits, media))
    return errors
