"""Per-platform media rules (containers, codecs, frame rates, sizes, aspect ratios, file sizes).

The limits are PLATFORM_LIMITS settings (defaults from shared/platforms.md "Media
specifications", in config.py); a rule whose limit is unset is not checked. Each broken rule is a
FieldError on `clip.media` naming the platform, the rule and the clip's value, e.g. "TikTok needs
at least 23 fps; this clip has 15".
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import FieldError
from ..models import platform_name
from .probe import MediaFacts

FIELD = "clip.media"


def _num(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):,.1f} MB"


def check_media(platform: str, limits: Mapping, facts: MediaFacts) -> list[FieldError]:
    """Every media rule of `platform` the video breaks; empty when the platform takes it."""
    name = platform_name(platform)
    errors: list[str] = []

    def allowed(rule: str, value: str | None, what: str) -> None:
        choices = limits.get(rule)
        if choices and value is not None and value not in choices:
            errors.append(f"{name} takes {what} {' or '.join(choices)}; this clip is {value}")

    def at_least(rule: str, value, unit: str, what: str = "") -> None:
        low = limits.get(rule)
        if low is not None and value is not None and value < low:
            errors.append(f"{name} needs at least {_num(low)} {unit}{what}; this clip has {_num(value)}")

    def at_most(rule: str, value, unit: str, what: str = "", show=_num) -> None:
        high = limits.get(rule)
        if high is not None and value is not None and value > high:
            errors.append(f"{name} allows at most {show(high)}{unit}{what}; this clip has {show(value)}")

    allowed("containers", facts.container, "containers")
    allowed("video_codecs", facts.video_codec, "video codecs")
    allowed("audio_codecs", facts.audio_codec, "audio codecs")
    frame_rate = round(facts.frame_rate, 2)
    at_least("frame_rate_min", frame_rate, "fps")
    at_most("frame_rate_max", frame_rate, " fps")
    at_most("width_max_pixels", facts.width, " pixels", " of width")
    size = f"{facts.width}x{facts.height}"
    side_min, side_max = limits.get("side_min_pixels"), limits.get("side_max_pixels")
    if side_min is not None and min(facts.width, facts.height) < side_min:
        errors.append(f"{name} needs each side to be at least {side_min} pixels; this clip is {size}")
    if side_max is not None and max(facts.width, facts.height) > side_max:
        errors.append(f"{name} allows each side at most {side_max} pixels; this clip is {size}")
    ratio = round(facts.aspect_ratio, 4)
    low, high = limits.get("aspect_ratio_min"), limits.get("aspect_ratio_max")
    shape = f"{size}, an aspect ratio of {ratio:g}"
    if low is not None and ratio < low:
        errors.append(f"{name} needs an aspect ratio (width / height) of at least {low:g}; this clip is {shape}")
    if high is not None and ratio > high:
        if high == 1.0:
            errors.append(f"{name} Shorts must be vertical or square; this clip is {shape}")
        else:
            errors.append(f"{name} allows an aspect ratio (width / height) of at most {high:g}; this clip is {shape}")
    at_most("audio_channels_max", facts.audio_channels, " audio channels")
    at_most("audio_sample_rate_max_hz", facts.audio_sample_rate, " Hz", " of audio sample rate")
    at_most("file_max_bytes", facts.size_bytes, "", " of file size", show=_mb)
    video_rate = facts.video_bit_rate or facts.bit_rate
    at_most("video_bit_rate_max", video_rate, "", " of video bit rate",
            show=lambda bps: f"{bps / 1_000_000:g} Mbps")
    return [FieldError(FIELD, message) for message in errors]
