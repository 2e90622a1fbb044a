"""Small real videos for the tests, encoded with PyAV (FFmpeg inside), and other files.

`make_video` writes an H.264 (or VP9) video whose frame N is a solid colour with red = 7 * N
mod 255, so a thumbnail shows which moment it was taken from. Files are cached per test session
by their parameters: encoding costs ~0.1 s each.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import av
from PIL import Image

AUDIO_RATE = 44100


@dataclass(frozen=True)
class VideoSpec:
    width: int = 360
    height: int = 640
    fps: int = 30
    seconds: float = 4.0
    audio: bool = True
    codec: str = "libx264"  # or "libvpx-vp9" (container webm)
    container: str = "mp4"
    faststart: bool = True  # the index first, as phones and editors write it
    noise: bool = False  # grain in each frame: a file of some size (a few hundred KB a second)

    @property
    def name(self) -> str:
        sound = "audio" if self.audio else "mute"
        return (f"{self.width}x{self.height}-{self.fps}fps-{self.seconds:g}s-{sound}-"
                f"{self.codec}{'-fs' if self.faststart else ''}{'-noise' if self.noise else ''}"
                f".{self.container}")


VERTICAL = VideoSpec()
LANDSCAPE = VideoSpec(width=640, height=360, audio=False)
VERTICAL_15FPS = VideoSpec(fps=15, audio=False)
WEBM = VideoSpec(width=640, height=360, codec="libvpx-vp9", container="webm", audio=False,
                 faststart=False)


def frame_red(index: int) -> int:
    """The red value of frame `index` of a test video."""
    return (index * 7) % 255


def encode(path: Path, spec: VideoSpec) -> Path:
    """Write the video `spec` describes at `path`."""
    options = {"movflags": "faststart"} if spec.faststart and spec.container == "mp4" else {}
    with av.open(str(path), "w", format=spec.container, options=options) as out:
        video = out.add_stream(spec.codec, rate=spec.fps)
        video.width, video.height, video.pix_fmt = spec.width, spec.height, "yuv420p"
        video.codec_context.gop_size = spec.fps  # a keyframe a second, as phones write
        audio = out.add_stream("aac", rate=AUDIO_RATE, layout="stereo") if spec.audio else None
        for index in range(int(spec.fps * spec.seconds)):
            image = Image.new("RGB", (spec.width, spec.height), (frame_red(index), 100, 50))
            if spec.noise:  # grain below the top-left corner, whose colour tells the frame
                grain = Image.effect_noise((spec.width, spec.height // 2), 60).convert("RGB")
                image.paste(grain, (0, spec.height // 2))
            for packet in video.encode(av.VideoFrame.from_image(image)):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if audio is not None:
            samples, total, pts = 1024, int(AUDIO_RATE * spec.seconds), 0
            while pts < total:
                frame = av.AudioFrame(format="s16", layout="stereo", samples=samples)
                frame.planes[0].update(bytes(samples * 4))
                frame.sample_rate, frame.pts = AUDIO_RATE, pts
                for packet in audio.encode(frame):
                    out.mux(packet)
                pts += samples
            for packet in audio.encode():
                out.mux(packet)
    return path


class VideoFactory:
    """make(spec) -> a path to a fresh copy of that video (the test may move or change it)."""

    def __init__(self, cache: Path, workdir: Path):
        self.cache, self.workdir = cache, workdir
        self.count = 0

    def _fresh(self, source: Path, suffix: str) -> Path:
        self.count += 1
        target = self.workdir / f"file{self.count}{suffix}"
        shutil.copyfile(source, target)
        return target

    def video(self, spec: VideoSpec = VERTICAL) -> Path:
        cached = self.cache / spec.name
        if not cached.exists():
            encode(cached.with_name("partial-" + spec.name), spec).rename(cached)
        return self._fresh(cached, "." + spec.container)

    def truncated(self, spec: VideoSpec = VERTICAL, keep: float = 0.6) -> Path:
        """The first `keep` of the video's bytes: an upload cut off."""
        path = self.video(spec)
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])
        return path

    def not_a_video(self) -> Path:
        """A text file named like a video."""
        self.count += 1
        path = self.workdir / f"notes{self.count}.mp4"
        path.write_text("These are meeting notes, not a video.\n" * 200)
        return path

    def image(self) -> Path:
        self.count += 1
        path = self.workdir / f"still{self.count}.png"
        Image.new("RGB", (64, 64), (10, 200, 10)).save(path)
        return path
