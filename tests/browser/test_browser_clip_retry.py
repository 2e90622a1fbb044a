"""The clip page's Retry in Chromium, on a phone and a laptop (issue 12, item 4): a failing
platform, then Retry, which queues one retry of that attempt (the one retry service); the panel
follows it through the queue to its post, naming the account and keeping the focus; the failure
then leaves home's latest failures and the history's Retry. A double click retries once, and
the same works without JavaScript."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from dashboard.models import PublishLog

from .conftest import screenshot
from .test_browser_accessibility import violations
from .test_browser_layout import overflow
from queue_support import wait_until

pytestmark = pytest.mark.browser

WIDTHS = (390, 1280)


def retries(live) -> list[PublishLog]:
    with live.db() as db:
        return list(db.session.scalars(select(PublishLog).where(PublishLog.retry_of_id.is_not(None))))


def status_of(live, log_id) -> str:
    with live.db() as db:
        return db.session.get(PublishLog, log_id).status


def log_count(live) -> int:
    with live.db() as db:
        return db.session.scalar(select(func.count()).select_from(PublishLog))


def fail_a_publish(page: Page, live) -> None:
    """Publish from the clip page's panel to @acme.sports while the platform fails; wait for the
    failure."""
    live.simulator(failure_rate=1.0)
    page.select_option("#social_account_id", label="@acme.sports")
    page.fill("#caption", "Spring is here")
    page.click("#publish-button")
    expect(page.locator("#publish-failure")).to_be_visible()
    live.simulator(failure_rate=0.0)


@pytest.mark.parametrize("width", WIDTHS)
def test_retry_is_followed_to_its_post_and_the_failure_is_dealt_with(clip_page, live, live_worker, width):
    page, clip_id = clip_page(width)
    fail_a_publish(page, live)
    result = page.locator("#publish-result")
    failed_id = page.locator("#publish-failure").get_attribute("data-log-id")

    page.locator("#retry-button").dblclick()  # a double click retries once

    processing = result.locator("#publish-processing")
    expect(processing).to_contain_text("Retry queued")
    expect(processing.locator("#publish-target")).to_have_text("@acme.sports on Instagram")
    expect(result).to_be_focused()
    success = result.locator("#publish-final #publish-success")
    expect(success).to_be_visible(timeout=10_000)
    expect(success.locator("#publish-target")).to_have_text("@acme.sports on Instagram")
    expect(success.locator("a#publish-url")).to_have_attribute("href", re.compile(r"^https://"))
    expect(result).to_be_focused()
    history = page.locator("#clip-history-table tbody tr")
    expect(history.first).to_have_attribute("data-status", "success")
    [retry] = retries(live)
    assert str(retry.retry_of_id) == failed_id and log_count(live) == 2
    assert overflow(page) == 0
    page.evaluate("() => getSelection().removeAllRanges()")  # the double click selected a word
    screenshot(page, f"clip-retry-{width}")
    assert violations(page) == []

    # Dealt with: no longer among home's failures, no second Retry in the history.
    page.goto("/")
    expect(page.locator(f"#failures-table form[action='/failures/{failed_id}/retry']")).to_have_count(0)
    page.goto(f"/history?clip={clip_id}")
    row = page.locator(f"#log-{failed_id}")
    expect(row).to_contain_text("Retried:")
    expect(row.locator(".retry-button")).to_have_count(0)


@pytest.mark.parametrize("width", WIDTHS)
def test_a_retry_that_fails_again_offers_a_retry_of_its_own(clip_page, live, live_worker, width):
    page, clip_id = clip_page(width)
    fail_a_publish(page, live)
    first_id = page.locator("#publish-failure").get_attribute("data-log-id")
    live.simulator(failure_rate=1.0)
    page.click("#retry-button")

    failure = page.locator("#publish-final #publish-failure")
    expect(failure).to_be_visible(timeout=10_000)
    expect(failure.locator("#publish-target")).to_have_text("@acme.sports on Instagram")
    [retry] = retries(live)
    expect(failure).to_have_attribute("data-log-id", str(retry.id))
    expect(failure.locator("#retry-form")).to_have_attribute(
        "action", f"/clips/{clip_id}/attempts/{retry.id}/retry")
    assert str(retry.retry_of_id) == first_id
    assert overflow(page) == 0


@pytest.mark.parametrize("width", WIDTHS)
def test_retry_without_javascript(clip_page, live, live_worker, width):
    page, clip_id = clip_page(width, java_script_enabled=False)
    fail_a_publish(page, live)  # the form posts the whole page back

    page.click("#retry-button")

    expect(page).to_have_url(re.compile(rf"/clips/{clip_id}/attempts/[0-9a-f-]{{36}}$"))
    [retry] = retries(live)
    expect(page.locator("#publish-processing")).to_have_attribute("data-log-id", str(retry.id))
    follow = page.locator("#publish-follow")
    expect(follow).to_be_visible()
    assert overflow(page) == 0

    # The worker publishes it; the link shows where it stands.
    wait_until(lambda: status_of(live, retry.id) == "success", what="the retry to be published")
    follow.click()
    expect(page.locator("#publish-success #publish-target")).to_have_text("@acme.sports on Instagram")

    # The original's own page offers its Retry again (a second tab, an old page): refused in
    # the page, and nothing is published twice.
    page.goto(f"/clips/{clip_id}/attempts/{retry.retry_of_id}")
    page.click("#retry-button")
    expect(page.locator("#retry-refused")).to_contain_text("already retried")
    expect(page.locator("#publish-success")).to_be_visible()
    assert len(retries(live)) == 1


@pytest.mark.parametrize("width", WIDTHS)
def test_retry_all_failed_on_the_batch_page_finishes_the_batch(open_page, live, live_worker, width):
    """Item 8: the batch page's "Retry all failed" retries each failed target once (linked, in
    the batch) and the page follows them until the batch has succeeded."""
    clip_id = live.add_clip("Season opener")
    main = live.add_account("instagram", "brand")
    live.add_account("instagram", "brand.fr", parent_account_id=main)
    live.add_account("instagram", "brand.de", parent_account_id=main)
    page = open_page(width)
    live.simulator(failure_rate=1.0)
    page.goto(f"/clips/{clip_id}")
    page.check(f"#xp-all-{main}")
    page.fill("#xp-caption", "For everyone")
    page.click("#crosspost-button")
    expect(page).to_have_url(re.compile(r"/batches/[0-9a-f-]{36}$"))
    button = page.locator("#retry-all-failed button")
    expect(button).to_have_text("Retry all failed (3)", timeout=10_000)
    assert overflow(page) == 0
    live.simulator(failure_rate=0.0)

    button.click()

    expect(page.locator("#batch-status")).to_have_text(re.compile("succeeded", re.I), timeout=10_000)
    expect(page.locator("#batch-rows tbody tr[data-status=success]")).to_have_count(3)
    expect(page.locator("#retry-all-failed")).to_have_count(0)
    assert len(retries(live)) == 3 and log_count(live) == 6
    assert overflow(page) == 0
    assert violations(page) == []
