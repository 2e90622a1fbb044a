"""Fixtures for the tests that run real queue workers (in-process Huey consumers or `flask worker`
subprocesses) beside the test thread, and the live platform they publish to (the counting fake
over real HTTP: `platform`, `live_account`, `live_clip`).

Here `make_clip` and `make_account` return detached snapshots (their columns loaded, the test
thread's transaction ended): on SQLite a transaction the test left open would hold the write lock
the workers need or keep reading an old snapshot (see tests/queue_support.py).
"""

from __future__ import annotations

import os

import pytest

from dashboard.credentials import set_account_credentials
from dashboard.extensions import db as _db
from dashboard.models import SocialAccount
from dashboard.publishing.providers import LIVE_CLIENTS
from dashboard.publishing.simulator import PlatformSimulator
from tests.fakes import FakeServer
from tests.fakes.counting import CountingClient, CountingPlatform

from api_support import COMPLETE_CREDENTIALS
from queue_support import VIDEO_BYTES, Api, InProcessWorker, WorkerProcess, released


@pytest.fixture
def make_clip(make_clip):
    """make_clip(**fields) -> a detached snapshot of a new clip."""

    def make(**fields):
        clip = make_clip(**fields)
        return released(lambda: (_db.session.refresh(clip), clip)[1])

    return make


@pytest.fixture
def make_account(make_account):
    """make_account(platform="instagram", handle=None, **fields) -> a detached snapshot of a new
    social account."""

    def make(platform: str = "instagram", handle: str | None = None, **fields):
        account = make_account(platform, handle, **fields)
        return released(lambda: (_db.session.refresh(account), account)[1])

    return make


@pytest.fixture
def api(client, api_headers):
    """An editor's API client (`api.as_role("admin")` for another role)."""
    made = Api(client, api_headers("editor"))
    made.as_role = lambda role: Api(client, api_headers(role))
    _db.session.remove()
    return made


@pytest.fixture
def start_worker(app):
    """start_worker(threads=4) -> a running in-process worker; all are stopped after the test."""
    workers: list[InProcessWorker] = []

    def start(threads: int = 4) -> InProcessWorker:
        worker = InProcessWorker(app, threads)
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def worker(start_worker):
    """One running in-process worker with 4 threads."""
    return start_worker(4)


@pytest.fixture
def worker_process(app, database_uri, tmp_path):
    """worker_process(threads=4, **env) -> a running `flask worker` subprocess; all are stopped
    (gracefully) after the test."""
    processes: list[WorkerProcess] = []

    def start(threads: int = 4, **overrides) -> WorkerProcess:
        log_path = tmp_path / f"worker-{len(processes) + 1}.log"
        process = WorkerProcess(app, database_uri, threads, log_path, **overrides)
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.stop()


@pytest.fixture
def platform_calls(monkeypatch):
    """Every simulated platform call (the job), in order, from any thread of this process."""
    calls = []
    real = PlatformSimulator.publish

    def publish(self, job):
        calls.append(job)
        return real(self, job)

    monkeypatch.setattr(PlatformSimulator, "publish", publish)
    return calls


@pytest.fixture
def processing_polls() -> int:
    """How many status polls the counting platform answers "processing" before the upload is
    ready; override it in a folder or module to change it for `platform`."""
    return 2


@pytest.fixture
def platform(monkeypatch, processing_polls):
    """The counting platform on a loopback port, registered as TikTok's live client."""
    fake = CountingPlatform(processing_polls=processing_polls)
    with FakeServer(fake.app) as server:
        monkeypatch.setattr(CountingClient, "base_url", server.url)
        monkeypatch.setattr(CountingClient, "poll_wait", 0.05)
        monkeypatch.setitem(LIVE_CLIENTS, "tiktok", CountingClient)
        fake.url = server.url
        yield fake
        for hold in list(fake.holds.values()):
            hold.release.set()


@pytest.fixture
def make_live_account(db, make_account):
    """make_live_account(platform, handle=None, **fields) -> a detached account with complete
    credentials (COMPLETE_CREDENTIALS): in live mode it publishes through its provider client."""

    def make(platform: str, handle: str | None = None, **fields):
        account = make_account(platform, handle, **fields)
        set_account_credentials(db, account.id, COMPLETE_CREDENTIALS[platform])
        return released(lambda: _db.session.get(SocialAccount, account.id))

    return make


@pytest.fixture
def live_account(make_live_account):
    """A TikTok account with complete credentials: in live mode it publishes to `platform`."""
    return make_live_account("tiktok", "creator.one", display_name="Creator")


@pytest.fixture
def make_video_clip(make_clip, tmp_path):
    """make_video_clip(size, name="clip.mp4") -> a detached clip of 20 s whose video is a local
    file of `size` random bytes."""

    def make(size: int, name: str = "clip.mp4"):
        path = tmp_path / name
        path.write_bytes(os.urandom(size))
        return make_clip(media=str(path), duration_seconds=20.0)

    return make


@pytest.fixture
def live_clip(make_video_clip):
    """A clip whose video is a local file of VIDEO_BYTES."""
    return make_video_clip(VIDEO_BYTES)
