"""In the browser: the zone picker searches and offers the browser's own zone, the pages then
show times on that clock with the zone named; a new API token has a working Copy button."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from dashboard.models import PublishLog

pytestmark = pytest.mark.browser


def test_pick_a_zone_by_search_or_the_browsers_and_see_times_on_that_clock(open_page, live):
    clip_id = live.add_clip("Match recap")
    with live.db() as db:
        db.session.add(PublishLog(clip_id=clip_id, platform="instagram", status="failed",
                                  provider="simulator", caption="", hashtags=[], error_message="No",
                                  requested_at=datetime(2026, 7, 1, 16, 5, tzinfo=UTC)))
        db.session.commit()
    page = open_page(1280, timezone_id="Asia/Kolkata")
    page.goto("/profile")
    zone = page.locator("#timezone")
    offer = page.locator("#timezone-browser")
    expect(offer).to_have_text("Use this browser's zone: Asia/Kolkata (IST, UTC+05:30)")

    page.fill("#timezone-search", "los angeles")
    expect(page.locator("#timezone-matches")).to_have_text("1 zone matches")
    expect(zone).to_have_value("America/Los_Angeles")
    page.fill("#timezone-search", "+05:30")
    expect(page.locator("#timezone-matches")).to_have_text(re.compile(r"^[12] zones? match"))
    offer.click()
    expect(zone).to_have_value("Asia/Kolkata")
    page.click("#profile-submit")
    expect(page.locator(".flash-success")).to_contain_text("Asia/Kolkata")

    page.goto("/history")
    expect(page.locator("#history-table tbody tr td").first).to_have_text(
        re.compile(r"^2026-07-01 21:35:00\s*IST, UTC\+05:30$"))
    expect(page.locator("#history-table time").first).to_have_attribute("title", "Asia/Kolkata")


def test_a_new_token_can_be_copied_with_one_click(open_page):
    page = open_page(390, permissions=["clipboard-read", "clipboard-write"])
    page.goto("/tokens/")
    page.fill("#name", "deploy")
    page.click("#token-submit")
    value = page.locator("#new-token-value").input_value()
    assert value
    page.click("#copy-token")
    expect(page.locator("#copy-token-status")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == value
