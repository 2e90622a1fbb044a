"""YouTube upload throughput: the live client's resumable upload against the fake, as a ratio of
a plain streamed PUT of the same file to a sink doing the same server-side work, on loopback.

Both servers are the same werkzeug `FakeServer` in this process, both read the body in 64 KiB
blocks and hash it with SHA-256; the difference is the protocol (a session, chunks of
YOUTUBE_CHUNK_BYTES each answered 308, the file reopened at each chunk's offset). Also reports
the traced memory peak of the client's run.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import statistics
import sys
import tempfile
import time
import tracemalloc

import httpx

from .common import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tests"))

from dashboard.publishing.providers.base import LiveJob, MediaSource  # noqa: E402
from dashboard.publishing.providers.youtube import YouTubeLiveClient  # noqa: E402

from fakes import FakeServer  # noqa: E402
from fakes.youtube import FakeYouTube  # noqa: E402

BLOCK = 1024 * 1024


def _sink(environ, start_response):
    """A plain PUT target: read the body in 64 KiB blocks, hash it, answer 200."""
    stream, digest = environ["wsgi.input"], hashlib.sha256()
    left = int(environ.get("CONTENT_LENGTH") or 0)
    while left > 0:
        block = stream.read(min(64 * 1024, left))
        if not block:
            break
        digest.update(block)
        left -= len(block)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "64")])
    return [digest.hexdigest().encode()]


def _plain_put(url: str, media: MediaSource) -> None:
    with httpx.Client() as http:
        response = http.put(url, content=media.read_range(0, media.size),
                            headers={"Content-Length": str(media.size)}, timeout=120)
        response.raise_for_status()


def _youtube_upload(url: str, media: MediaSource, chunk_bytes: int) -> None:
    settings = {"YOUTUBE_API_URL": url, "YOUTUBE_CHUNK_BYTES": chunk_bytes,
                "PROVIDER_HTTP_TIMEOUT": 120.0, "YOUTUBE_PRIVACY_STATUS": "private",
                "YOUTUBE_CATEGORY_ID": "22", "YOUTUBE_UPLOAD_RETRIES": 5,
                "YOUTUBE_RETRY_BASE_DELAY": 1.0}
    credentials = {"access_token": "bench-token"}
    job = LiveJob("youtube", "bench", "Bench upload", "", "bench", (), media, 30.0, None,
                  credentials)
    with httpx.Client() as http:
        result = YouTubeLiveClient(credentials, settings, http).upload_video(job, {}, lambda _: None)
    assert result.state["video_id"]


def _interleaved(uploads: dict[str, object], runs: int) -> dict[str, list[float]]:
    """Seconds of each upload, run in turns (the machine's load changes under all alike)."""
    for upload in uploads.values():
        upload()  # warm up: page cache, connections, imports
    seconds: dict[str, list[float]] = {name: [] for name in uploads}
    for _ in range(runs):
        for name, upload in uploads.items():
            started = time.perf_counter()
            upload()
            seconds[name].append(time.perf_counter() - started)
    return seconds


def main(args) -> tuple[str, dict]:
    size = args.upload_mb * 1024 * 1024
    chunk_sizes = [int(value) * 1024 * 1024 for value in args.upload_chunk_mb.split(",")]
    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
        path = os.path.join(folder, "upload.bin")
        with open(path, "wb") as handle:
            for _ in range(size // BLOCK):  # real bytes (a sparse file would flatter the reads)
                handle.write(os.urandom(BLOCK))
        media = MediaSource(path=path)
        sink = stack.enter_context(FakeServer(_sink))
        fake = stack.enter_context(FakeServer(FakeYouTube(quota_per_day=10_000)))
        uploads = {"plain": lambda: _plain_put(sink.url, media)}
        for chunk in chunk_sizes:
            uploads[chunk] = lambda chunk=chunk: _youtube_upload(fake.url, media, chunk)
        seconds = _interleaved(uploads, args.upload_runs)
        peaks = {}
        for chunk in chunk_sizes:
            tracemalloc.start()
            _youtube_upload(fake.url, media, chunk)
            peaks[chunk] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    base = statistics.median(seconds["plain"])
    rows = [f"| plain streamed PUT | - | {size / base / 1e6:.0f} | 1.00 | - |"]
    raw = {"size_bytes": size, "runs": args.upload_runs, "plain_put_seconds": seconds["plain"],
           "youtube": {}}
    for chunk in chunk_sizes:
        median = statistics.median(seconds[chunk])
        raw["youtube"][chunk] = {"seconds": seconds[chunk], "traced_peak_bytes": peaks[chunk]}
        rows.append(f"| YouTube resumable | {chunk // 2**20} MiB | {size / median / 1e6:.0f} | "
                    f"{base / median:.2f} | {peaks[chunk] / 2**20:.1f} MiB |")
    text = "\n".join([
        f"### YouTube upload throughput ({args.upload_mb} MiB file, median of "
        f"{args.upload_runs} interleaved runs, loopback)",
        "",
        "| upload | chunk | MB/s | ratio to plain PUT (higher is faster) | traced memory peak |",
        "|---|---|---|---|---|",
        *rows,
    ])
    return text, raw
