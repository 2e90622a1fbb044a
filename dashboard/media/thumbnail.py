"""A still of a video at a chosen time, as a small JPEG (PyAV decodes, Pillow resizes)."""

from __future__ import annotations

import io
import os

import av
from PIL import Image

from .probe import NotAVideo

JPEG_QUALITY = 82


def default_cover_ms(duration_seconds: float | None) -> int:
    """Where the cover is taken when nobody chose: one second in, or the middle of a shorter clip."""
    if not duration_seconds:
        return 0
    return int(min(1.0, duration_seconds / 2) * 1000)


def make_thumbnail(path: str | os.PathLike, at_ms: int, max_side: int = 480) -> bytes:
    """A JPEG of the frame shown at `at_ms` (the last frame when past the end), at most
    `max_side` pixels on its longer side, rotated as the video is displayed."""
    try:
        with av.open(str(path), "r") as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            target = max(at_ms, 0) / 1000
            if target > 0 and stream.time_base:
                # Seek to the keyframe before the moment, then decode up to it.
                container.seek(int(target / stream.time_base), stream=stream, backward=True)
            picked = None
            for frame in container.decode(stream):
                picked = frame
                if frame.time is not None and frame.time >= target:
                    break
            if picked is None:
                raise NotAVideo("the video holds no frame to make a thumbnail from")
            image = picked.to_image()
            rotation = int(getattr(picked, "rotation", 0) or 0) % 360
    except av.error.FFmpegError as exc:
        raise NotAVideo(f"no frame could be decoded ({exc.strerror or exc})") from None
    if rotation:
        # FFmpeg's rotation is counter-clockwise; Pillow's rotate is too.
        image = image.rotate(rotation, expand=True)
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue()
