"""What a video file is: container, codecs, size, frame rate, duration (PyAV, FFmpeg inside).

`probe_file` reads the container's headers, decodes the first video frame (which also proves
the stream can be decoded, and gives the display rotation) and checks that the file is whole:
for MP4/MOV every indexed sample must lie inside the file (a cut-off upload fails here); for
other containers the last second must still demux. It raises `NotAVideo` with a sentence a
person can act on.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import av

# What the mov/mp4 demuxer's major brand says the file is (ISO files are MP4 whatever the brand).
QUICKTIME_BRANDS = ("qt",)
MATROSKA_WEBM_CODECS = {"vp8", "vp9", "av1"}
CONTENT_TYPES = {
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "webm": "video/webm",
    "mkv": "video/x-matroska",
    "avi": "video/x-msvideo",
    "mpegts": "video/mp2t",
    "flv": "video/x-flv",
}
# A file whose last packet ends this much before its stated duration was cut off (at most this
# many seconds, at least two frames, a tenth of a short clip).
TAIL_TOLERANCE_SECONDS = 1.0


class NotAVideo(ValueError):
    """The file is not a video the dashboard can read; `str()` says why, for the person."""


@dataclass(frozen=True)
class MediaFacts:
    """The probed facts of one video file. Width and height are as displayed (rotation applied)."""

    container: str
    content_type: str
    size_bytes: int
    duration_seconds: float
    video_codec: str
    width: int
    height: int
    frame_rate: float
    bit_rate: int | None = None
    video_bit_rate: int | None = None
    rotation: int = 0
    audio_codec: str | None = None
    audio_channels: int | None = None
    audio_sample_rate: int | None = None

    @property
    def aspect_ratio(self) -> float:
        """Width over height as displayed (9:16 is 0.5625)."""
        return self.width / self.height

    def as_dict(self) -> dict:
        return asdict(self)


def _container_name(container) -> str:
    names = container.format.name.split(",")
    if "mp4" in names or "mov" in names:
        brand = (container.metadata.get("major_brand") or "").strip().lower()
        return "mov" if brand in QUICKTIME_BRANDS else "mp4"
    if "matroska" in names or "webm" in names:
        codecs = {s.codec_context.name for s in container.streams if s.type == "video"}
        return "webm" if codecs and codecs <= MATROSKA_WEBM_CODECS else "mkv"
    return names[0]


def _duration(container, stream) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


def _check_whole(container, stream, size_bytes: int, duration: float) -> None:
    """Raise NotAVideo when the file ends before its own index or duration says it should."""
    indexed_end = 0
    for each in container.streams:
        entries = getattr(each, "index_entries", None) or ()
        if len(entries) > 1:
            indexed_end = max(indexed_end, max(entry.pos + entry.size for entry in entries))
    if indexed_end:
        if indexed_end > size_bytes:
            raise NotAVideo(
                f"the file is truncated: it has {size_bytes} bytes and its index needs "
                f"{indexed_end}; upload the whole file again")
        return
    # No usable index (WebM, MKV, ...): the last moments must still be there.
    frame = 1 / float(stream.average_rate or stream.guessed_rate or 30)
    tolerance = min(TAIL_TOLERANCE_SECONDS, max(duration / 10, 2 * frame))
    try:
        start = max(duration - 2 * tolerance, 0.0)
        container.seek(int(start / stream.time_base), stream=stream, backward=True)
        last_end = 0.0
        for packet in container.demux(stream):
            if packet.pts is not None:
                last_end = max(last_end, float((packet.pts + (packet.duration or 0)) * stream.time_base))
    except av.error.FFmpegError as exc:
        raise NotAVideo(f"the file is damaged near its end ({exc.strerror or exc}); upload it again") from None
    if last_end < duration - tolerance:
        raise NotAVideo(
            f"the file is truncated: it says it lasts {duration:.1f} s but stops at {last_end:.1f} s; "
            "upload the whole file again")


def probe_file(path: str | os.PathLike) -> MediaFacts:
    """The facts of the video at `path`, or NotAVideo saying why it is not one (or not whole)."""
    size_bytes = os.path.getsize(path)
    if size_bytes == 0:
        raise NotAVideo("the file is empty")
    try:
        container = av.open(str(path), "r")
    except (av.error.FFmpegError, UnicodeDecodeError):
        raise NotAVideo("this is not a video file (no known container format could read it)") from None
    with container:
        if container.format.name.endswith("_pipe"):
            raise NotAVideo(f"this is an image ({container.format.name.removesuffix('_pipe')}), not a video")
        if not container.streams.video:
            kinds = sorted({str(s.type) for s in container.streams}) or ["nothing"]
            raise NotAVideo(f"this file has no video stream (it holds {', '.join(kinds)})")
        stream = container.streams.video[0]
        duration = _duration(container, stream)
        if not duration or duration <= 0:
            raise NotAVideo("this video has no duration: it may be a still image or damaged")
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate:
            raise NotAVideo("this video has no frame rate: it may be damaged")
        try:
            first = next(container.decode(stream), None)
        except av.error.FFmpegError as exc:
            raise NotAVideo(f"the video stream cannot be decoded ({exc.strerror or exc})") from None
        if first is None:
            raise NotAVideo("the video stream holds no frame")
        rotation = int(getattr(first, "rotation", 0) or 0) % 360
        width, height = stream.codec_context.width, stream.codec_context.height
        if rotation in (90, 270):
            width, height = height, width
        if not width or not height:
            raise NotAVideo("the video has no picture size: it may be damaged")
        _check_whole(container, stream, size_bytes, duration)
        audio = container.streams.audio[0] if container.streams.audio else None
        name = _container_name(container)
        return MediaFacts(
            container=name,
            content_type=CONTENT_TYPES.get(name, "application/octet-stream"),
            size_bytes=size_bytes,
            duration_seconds=round(duration, 3),
            video_codec=stream.codec_context.name,
            width=width,
            height=height,
            frame_rate=round(float(rate), 3),
            bit_rate=container.bit_rate or None,
            video_bit_rate=stream.codec_context.bit_rate or None,
            rotation=rotation,
            audio_codec=audio.codec_context.name if audio else None,
            audio_channels=audio.codec_context.channels if audio else None,
            audio_sample_rate=audio.codec_context.sample_rate if audio else None,
        )
