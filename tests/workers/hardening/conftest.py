"""Fixtures of the hardening tests (the queue's come from tests/workers/conftest.py): a real
gunicorn, and a live platform served over real HTTP (the counting fake)."""

from __future__ import annotations

import os

import pytest

from api_support import COMPLETE_CREDENTIALS
from queue_support import released
from server_support import GunicornProcess

VIDEO_BYTES = 200 * 1024  # four chunks of the counting client's 64 KiB


@pytest.fixture
def platform(monkeypatch):
    """The counting platform on a loopback port, registered as TikTok's live client."""
    from dashboard.publishing.providers import LIVE_CLIENTS
    from tests.fakes import FakeServer
    from tests.fakes.counting import CountingClient, CountingPlatform

    fake = CountingPlatform(processing_polls=1)
    with FakeServer(fake.app) as server:
        monkeypatch.setattr(CountingClient, "base_url", server.url)
        monkeypatch.setattr(CountingClient, "poll_wait", 0.05)
        monkeypatch.setitem(LIVE_CLIENTS, "tiktok", CountingClient)
        fake.url = server.url
        yield fake
        for hold in list(fake.holds.values()):
            hold.release.set()


@pytest.fixture
def live_account(db):
    """A TikTok account with complete credentials: in live mode it publishes to `platform`."""
    from dashboard.credentials import set_account_credentials
    from dashboard.models import SocialAccount

    account = SocialAccount(platform="tiktok", handle="creator.one", display_name="Creator")
    db.session.add(account)
    db.session.commit()
    set_account_credentials(db, account.id, COMPLETE_CREDENTIALS["tiktok"])
    return released(lambda: (db.session.refresh(account), account)[1])


@pytest.fixture
def live_clip(db, tmp_path):
    """A clip whose video is a local file of VIDEO_BYTES."""
    from dashboard.models import Clip

    path = tmp_path / "clip.mp4"
    path.write_bytes(os.urandom(VIDEO_BYTES))
    clip = Clip(title="Launch teaser", description="", media=str(path), duration_seconds=20.0)
    db.session.add(clip)
    db.session.commit()
    return released(lambda: (db.session.refresh(clip), clip)[1])


@pytest.fixture
def gunicorn(app, database_uri, tmp_path):
    """gunicorn(**settings) -> a running GunicornProcess; all are stopped after the test."""
    servers: list[GunicornProcess] = []

    def start(**settings) -> GunicornProcess:
        server = GunicornProcess(app, database_uri, tmp_path / f"gunicorn-{len(servers) + 1}.log",
                                 **settings)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
