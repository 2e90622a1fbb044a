"""In the browser: a live publish that outlasts PUBLISH_SYNC_WAIT shows "still working", is
finished by a queue worker, and the panel follows it to its result by itself, then stops polling."""

from __future__ import annotations

import os
import re
import time

import pytest
from playwright.sync_api import Page, expect

from dashboard.publishing.providers import LIVE_CLIENTS
from tests.fakes import FakeServer
from tests.fakes.counting import CountingClient, CountingPlatform

from api_support import COMPLETE_CREDENTIALS
from queue_support import InProcessWorker

pytestmark = pytest.mark.browser


@pytest.fixture
def live_mode(live, monkeypatch):
    """The live server in live mode, TikTok served by the counting platform, and a worker."""
    platform = CountingPlatform(processing_polls=2)
    previous = {key: live.app.config[key] for key in ("PROVIDER_MODE", "PUBLISH_SYNC_WAIT")}
    with FakeServer(platform.app) as server:
        monkeypatch.setattr(CountingClient, "base_url", server.url)
        monkeypatch.setattr(CountingClient, "poll_wait", 1.0)
        monkeypatch.setitem(LIVE_CLIENTS, "tiktok", CountingClient)
        live.app.config.update(PROVIDER_MODE="live", PUBLISH_SYNC_WAIT=0.3)
        worker = InProcessWorker(live.app, 2).start()
        try:
            yield platform
        finally:
            worker.stop()
            live.app.config.update(previous)


def test_a_live_publish_is_followed_on_the_page_until_it_is_published(admin_page: Page, live,
                                                                      live_mode, tmp_path):
    page = admin_page
    video = tmp_path / "clip.mp4"
    video.write_bytes(os.urandom(100 * 1024))
    clip_id = live.add_clip("Live teaser", media=str(video), duration_seconds=20.0)
    account_id = live.add_account("tiktok", "acme.live")
    live.set_credentials(account_id, COMPLETE_CREDENTIALS["tiktok"])
    polls: list[str] = []
    page.on("request", lambda request: "/attempts/" in request.url and polls.append(request.url))

    page.goto(f"/clips/{clip_id}")
    with page.expect_response(re.compile(r"/clips/accounts-options\?platform=tiktok")):
        page.select_option("#platform", "tiktok")
    page.select_option("#social_account_id", str(account_id))
    page.fill("#caption", "Going live")
    page.click("#publish-button")

    processing = page.locator("#publish-processing")
    expect(processing).to_be_visible()
    expect(processing).to_contain_text("still working on it")
    expect(page.locator("#publish-success")).to_be_visible(timeout=20_000)
    expect(page.locator("#publish-processing")).to_have_count(0)
    expect(page.locator("#clip-history-table tbody tr").first).to_have_attribute("data-status", "success")
    post_id = page.locator("#publish-post-id").inner_text()
    assert live_mode.published_posts() == [post_id]
    assert polls, "the panel never polled"

    seen = len(polls)
    time.sleep(3)  # longer than the polling interval: a final answer stops the polling
    assert len(polls) == seen
