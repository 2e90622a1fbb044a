"""Uploads of large videos through the dashboard, and the probe and thumbnail cost per clip.

1. A baseline in this process: a plain copy of the test file to another file on the same disk
   (read, write, fsync), the best this disk can do for "receive the bytes and keep them".
2. gunicorn (one worker process, as deployed) receives the same file through the resumable
   upload (tus: POST, then PATCHes of --chunk-mb, the last of which probes the file, makes its
   thumbnail and moves it into the media storage), and once more as a multipart `POST
   /api/clips` (--multipart-mb, the request that fits small files). A sampler reads the web
   worker's resident memory from /proc every 20 ms: the figure is the peak growth over its
   resident memory before the upload. Throughput is given as a ratio of the baseline's.
3. Probe and thumbnail time per clip, in this process, on real videos encoded for the run.

The large file is a real 4-second H.264 MP4 padded with bytes after its end up to --size-mb
(2 GiB by default): encoding 2 GB of real video on two shared cores would take longer than the
whole benchmark, and nothing on the upload path reads the bytes but the probe, which reads the
index and the frames it needs (trailing bytes are never reached).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from .common import Gunicorn, fresh_database, prepare_app, server_env, table

BLOCK = 1024 * 1024


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    if int(handle.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except OSError:
                pass
    return found


class RssSampler:
    """Samples the resident memory of gunicorn's worker processes while a block runs."""

    def __init__(self, master_pid: int, interval: float = 0.02):
        self.workers = _children(master_pid)
        self.interval = interval
        self.before = {pid: _rss_kib(pid) for pid in self.workers}
        self.peak = dict(self.before)
        self._stop = threading.Event()

    def _run(self):
        while not self._stop.is_set():
            for pid in self.workers:
                try:
                    self.peak[pid] = max(self.peak[pid], _rss_kib(pid))
                except OSError:
                    pass
            time.sleep(self.interval)

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def growth_mib(self) -> float:
        return max(self.peak[pid] - self.before[pid] for pid in self.workers) / 1024

    @property
    def before_mib(self) -> float:
        return max(self.before.values()) / 1024


def make_big_file(folder: Path, size_mb: int) -> tuple[Path, Path]:
    """A real short MP4 padded to `size_mb` MiB, and a copy of the short MP4 itself."""
    from tests.media_support import VideoSpec, encode

    path = encode(folder / "big.mp4", VideoSpec(width=360, height=640, seconds=4, noise=True))
    short = folder / "short.mp4"
    shutil.copyfile(path, short)
    block = os.urandom(BLOCK)
    with open(path, "ab") as handle:
        while handle.tell() < size_mb * BLOCK:
            handle.write(block[: min(BLOCK, size_mb * BLOCK - handle.tell())])
    return path, short


def plain_copy_seconds(path: Path, folder: Path) -> float:
    target = folder / "copy.bin"
    started = time.perf_counter()
    with open(path, "rb") as source, open(target, "wb") as out:
        shutil.copyfileobj(source, out, BLOCK)
        out.flush()
        os.fsync(out.fileno())
    seconds = time.perf_counter() - started
    target.unlink()
    return seconds


def _conn(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=600, blocksize=BLOCK)


def tus_upload(port: int, auth: dict, path: Path, chunk: int) -> tuple[float, dict]:
    """Upload `path` with tus in PATCHes of `chunk` bytes; (seconds, the clip)."""
    size = path.stat().st_size
    tus = {"Tus-Resumable": "1.0.0", **auth}
    started = time.perf_counter()
    conn = _conn(port)
    conn.request("POST", "/api/uploads", headers={**tus, "Upload-Length": str(size),
                                                   "Upload-Metadata": "filename YmlnLm1wNA=="})
    response = conn.getresponse()
    response.read()
    if response.status != 201:
        raise RuntimeError(f"tus creation answered {response.status}")
    location = "/" + response.getheader("Location").split("/", 3)[3]
    offset = 0
    clip_location = None
    with open(path, "rb") as handle:
        while offset < size:
            length = min(chunk, size - offset)
            handle.seek(offset)
            body = _Slice(handle, length)
            conn.request("PATCH", location, body=body, headers={
                **tus, "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": str(offset), "Content-Length": str(length)})
            response = conn.getresponse()
            data = response.read()
            if response.status != 204:
                raise RuntimeError(f"PATCH answered {response.status}: {data[:300]!r}")
            offset = int(response.getheader("Upload-Offset"))
            clip_location = response.getheader("Clip-Location") or clip_location
    seconds = time.perf_counter() - started
    conn.request("GET", "/" + clip_location.split("/", 3)[3], headers=auth)
    clip = json.loads(conn.getresponse().read())
    conn.close()
    return seconds, clip


class _Slice:
    """`length` bytes of an open file from its position, read in blocks (never whole)."""

    def __init__(self, handle, length: int):
        self.handle, self.left = handle, length

    def read(self, size: int = BLOCK) -> bytes:
        if self.left <= 0:
            return b""
        data = self.handle.read(min(size, self.left))
        self.left -= len(data)
        return data


def multipart_upload(port: int, auth: dict, path: Path, folder: Path) -> float:
    """One multipart POST /api/clips with the file streamed from disk; seconds."""
    boundary = "benchboundary7d3f"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nMultipart\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"m.mp4\"\r\n"
            "Content-Type: video/mp4\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = path.stat().st_size

    class Body:
        def __init__(self):
            self.parts = [head, None, tail]
            self.handle = open(path, "rb")

        def read(self, n: int = BLOCK) -> bytes:
            while self.parts:
                if self.parts[0] is None:
                    data = self.handle.read(n)
                    if data:
                        return data
                    self.handle.close()
                    self.parts.pop(0)
                    continue
                return self.parts.pop(0)
            return b""

    started = time.perf_counter()
    conn = _conn(port)
    conn.request("POST", "/api/clips", body=Body(), headers={
        **auth, "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(head) + size + len(tail))})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    if response.status != 201:
        raise RuntimeError(f"multipart POST answered {response.status}: {data[:300]!r}")
    return time.perf_counter() - started


def probe_and_thumbnail(folder: Path, repeat: int) -> list[dict]:
    """Median probe and thumbnail time per clip, for a few kinds of real video."""
    from dashboard.media.probe import probe_file
    from dashboard.media.thumbnail import make_thumbnail
    from tests.media_support import VideoSpec, encode

    kinds = {
        "720x1280 H.264 + AAC, 30 fps, 6 s": VideoSpec(width=720, height=1280, seconds=6, noise=True),
        "1080x1920 H.264, 30 fps, 3 s": VideoSpec(width=1080, height=1920, seconds=3, audio=False, noise=True),
        "640x360 VP9 WebM, 30 fps, 3 s": VideoSpec(width=640, height=360, seconds=3, audio=False, noise=True,
                                                   codec="libvpx-vp9", container="webm", faststart=False),
    }
    rows = []
    for label, spec in kinds.items():
        path = encode(folder / spec.name, spec)
        probes, thumbs = [], []
        for _ in range(repeat):
            started = time.perf_counter()
            facts = probe_file(path)
            probes.append(time.perf_counter() - started)
            started = time.perf_counter()
            make_thumbnail(path, int(facts.duration_seconds * 500), 480)  # the middle frame
            thumbs.append(time.perf_counter() - started)
        rows.append({"video": label, "size_mb": path.stat().st_size / BLOCK,
                     "probe_ms": statistics.median(probes) * 1000,
                     "thumbnail_ms": statistics.median(thumbs) * 1000})
        path.unlink()
    return rows


def main(args) -> tuple[str, dict]:
    work = Path(tempfile.mkdtemp(prefix="bench-media-", dir=args.media_dir))
    data: dict = {}
    try:
        print(f"media: writing a {args.size_mb} MiB test file in {work} ...", flush=True)
        big, short = make_big_file(work, args.size_mb)
        size = big.stat().st_size
        copy_seconds = plain_copy_seconds(big, work)
        data["plain_copy"] = {"seconds": copy_seconds, "mib_per_s": size / BLOCK / copy_seconds}

        with fresh_database("sqlite", "media") as db:
            env = server_env(db, {
                "QUEUE_URL": f"sqlite:///{work / 'queue.sqlite3'}",
                "MEDIA_STORAGE_URL": (work / "media").as_uri(),
                "MEDIA_UPLOAD_DIR": str(work / "uploads"),
                "MEDIA_CACHE_DIR": str(work / "cache"),
                "GUNICORN_WORKERS": "1",
            })
            auth = prepare_app(env)
            with Gunicorn(env, work / "gunicorn.log", workers=1, threads=None) as server:
                # A first small upload loads PyAV and Pillow into the worker: what follows is the
                # upload path's own memory, not the libraries'.
                tus_upload(server.port, auth, short, BLOCK)
                runs = (("tus, one PATCH", size),
                        (f"tus, {args.chunk_mb} MiB PATCHes", args.chunk_mb * BLOCK))
                for label, chunk in runs:
                    with RssSampler(server.process.pid) as rss:
                        seconds, clip = tus_upload(server.port, auth, big, chunk)
                    if clip["media"]["size_bytes"] != size:
                        raise RuntimeError(f"stored {clip['media']['size_bytes']} bytes of {size}")
                    data[label] = {"seconds": seconds, "mib_per_s": size / BLOCK / seconds,
                                   "ratio_to_copy": copy_seconds / seconds,
                                   "rss_before_mib": rss.before_mib, "rss_growth_mib": rss.growth_mib}
                    shutil.rmtree(work / "media", ignore_errors=True)  # keep the disk for the next run
                small = work / "multipart.mp4"
                with open(big, "rb") as source, open(small, "wb") as out:
                    out.write(source.read(args.multipart_mb * BLOCK))
                small_copy = plain_copy_seconds(small, work)
                with RssSampler(server.process.pid) as rss:
                    seconds = multipart_upload(server.port, auth, small, work)
                data[f"multipart, {args.multipart_mb} MiB"] = {
                    "seconds": seconds, "mib_per_s": args.multipart_mb / seconds,
                    "ratio_to_copy": small_copy / seconds,
                    "rss_before_mib": rss.before_mib, "rss_growth_mib": rss.growth_mib}
        big.unlink()
        data["probe_thumbnail"] = probe_and_thumbnail(work, args.media_repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rows = [["plain copy on this disk (read, write, fsync)", f"{data['plain_copy']['seconds']:.1f} s",
             f"{data['plain_copy']['mib_per_s']:.0f} MiB/s", "1.00", "-"]]
    for label, figures in data.items():
        if isinstance(figures, dict) and "ratio_to_copy" in figures:
            rows.append([f"upload through gunicorn: {label}", f"{figures['seconds']:.1f} s",
                         f"{figures['mib_per_s']:.0f} MiB/s", f"{figures['ratio_to_copy']:.2f}",
                         f"+{figures['rss_growth_mib']:.1f} MiB (from {figures['rss_before_mib']:.0f})"])
    text = (f"### Media uploads ({args.size_mb} MiB file; multipart {args.multipart_mb} MiB)\n\n"
            + table(["", "time", "throughput", "x plain copy", "web worker peak RSS growth"], rows)
            + "\n\n" + table(["video", "size", "probe (median)", "thumbnail (median)"],
                             [[r["video"], f"{r['size_mb']:.1f} MiB", f"{r['probe_ms']:.0f} ms",
                               f"{r['thumbnail_ms']:.0f} ms"] for r in data["probe_thumbnail"]]))
    return text, data
