"""In the browser: create a clip, publish it (success, failure, Retry), then find the attempts in
the history and the ledger; a failed htmx request is shown, never silent."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from dashboard.models import User
from dashboard.publishing.simulator import FAILURES

from .conftest import screenshot, sign_in

pytestmark = pytest.mark.browser


def platform_message(platform: str) -> re.Pattern:
    """Any of the simulator's failure messages for `platform`, word for word."""
    return re.compile("|".join(re.escape(failure.message) for failure in FAILURES[platform]))


def choose_account(page: Page, platform: str, account_id) -> None:
    """Pick the platform (its accounts load with htmx), then the account."""
    with page.expect_response(re.compile(r"/clips/accounts-options\?platform=" + platform)):
        page.select_option("#platform", platform)
    page.select_option("#social_account_id", str(account_id))


def watch_publish_spinner(page: Page) -> None:
    """Record whether the spinner was shown and the button disabled while a publish ran."""
    page.evaluate("""() => {
        window.publishSeen = {spinner: false, disabled: false};
        const spinner = document.getElementById('publish-spinner');
        new MutationObserver(() => {
            if (spinner.classList.contains('htmx-request')) window.publishSeen.spinner = true;
            if (document.getElementById('publish-button').disabled) window.publishSeen.disabled = true;
        }).observe(document.getElementById('publish-panel'),
                   {attributes: true, subtree: true, attributeFilter: ['class', 'disabled']});
    }""")


def test_create_a_clip_and_find_it_by_search(admin_page: Page, live):
    page = admin_page
    live.add_clip("Match recap", media="media/recap.mp4")
    page.goto("/clips")
    page.click("#new-clip")
    page.fill("#title", "Spring launch teaser")
    page.fill("#description", "Fifteen seconds of the new range.")
    page.fill("#media", "https://cdn.example.com/spring-launch.mp4")
    page.fill("#duration_seconds", "15")
    page.click("#save-clip")

    expect(page).to_have_url(re.compile(r"/clips/[0-9a-f-]{36}$"))
    expect(page.locator("#clip-title")).to_have_text("Spring launch teaser")
    expect(page.locator("#clip-duration")).to_have_text("15 seconds")
    expect(page.locator("#clip-history-empty")).to_be_visible()

    page.goto("/clips")
    expect(page.locator("#clips-table tbody tr")).to_have_count(2)
    page.locator("#q").press_sequentially("spring", delay=20)  # keyup drives the htmx search
    expect(page.locator("#clips-table tbody tr")).to_have_count(1)
    expect(page.locator("#clips-table")).to_contain_text("Spring launch teaser")
    expect(page).to_have_url(re.compile(r"[?&]q=spring"))
    page.locator("#q").press_sequentially("zzz")
    expect(page.locator("#no-clips")).to_contain_text("No clip matches")


def test_publish_succeeds_then_fails_then_retry_succeeds(admin_page: Page, live, live_worker):
    page = admin_page
    clip_id = live.add_clip("Spring launch teaser")
    account_id = live.add_account("tiktok", "acme.tok", display_name="Acme on TikTok")
    page.goto(f"/clips/{clip_id}")
    choose_account(page, "tiktok", account_id)
    page.fill("#caption", "New range, out now")
    page.fill("#hashtags", "launch, spring")
    result = page.locator("#publish-result")
    history = page.locator("#clip-history-table tbody tr")

    # 1. The simulator succeeds: the post's link and id, with the spinner shown meanwhile.
    live.simulator(failure_rate=0.0)
    watch_publish_spinner(page)
    page.click("#publish-button")
    expect(result.locator("#publish-success")).to_be_visible()
    expect(result.locator("a#publish-url")).to_have_attribute(
        "href", re.compile(r"^https://www\.tiktok\.com/@acme\.tok/video/\d{19}$"))
    expect(result.locator("code#publish-post-id")).to_have_text(re.compile(r"^\d{19}$"))
    assert page.evaluate("window.publishSeen") == {"spinner": True, "disabled": True}
    expect(page.locator("#publish-spinner")).not_to_have_class(re.compile("htmx-request"))
    expect(page.locator("#publish-button")).to_be_enabled()
    expect(history).to_have_count(1)  # the history below refreshed with the result

    # 2. The simulator fails: the platform's own message and a Retry button.
    live.simulator(failure_rate=1.0)
    page.click("#publish-button")
    expect(result.locator("#publish-failure")).to_be_visible()
    expect(result.locator("#publish-error")).to_have_text(platform_message("tiktok"))
    expect(result.locator("#retry-button")).to_be_visible()
    expect(history).to_have_count(2)

    # 3. It answers again: Retry queues a retry of that attempt, which the panel follows to its post.
    live.simulator(failure_rate=0.0)
    page.click("#retry-button")
    expect(result.locator("#publish-processing")).to_contain_text("Retry queued")
    expect(result.locator("#publish-success")).to_be_visible(timeout=10_000)
    expect(result.locator("#retry-button")).to_have_count(0)
    expect(history).to_have_count(3)
    screenshot(page, "clip-page")

    # Newest first: the retry, the failure, the first success, all to the chosen account.
    statuses = [row.get_attribute("data-status") for row in history.all()]
    assert statuses == ["success", "failed", "success"]
    expect(history.nth(1)).to_contain_text(platform_message("tiktok"))
    for row in history.all():
        expect(row).to_contain_text("@acme.tok")

    # The clip's ledger timeline: its publishes, step by step.
    page.click("#clip-ledger-link")
    expect(page).to_have_url(re.compile(r"/ledger\?.*entity_id=" + str(clip_id)))
    events = page.locator("#ledger-rows tr[data-event-type]")
    expect(events.and_(page.locator("[data-event-type=publish_successful]"))).to_have_count(2)
    expect(events.and_(page.locator("[data-event-type=publish_failed]"))).to_have_count(1)


def test_filter_the_history_by_status(admin_page: Page, live):
    page = admin_page
    clip_id = live.add_clip("Match recap")
    account_id = live.add_account("instagram", "acme.sports")
    live.publish(clip_id, account_id)
    failed = live.publish(clip_id, account_id, fail=True)
    live.publish(clip_id, account_id)
    assert not failed.success

    page.goto("/history")
    rows = page.locator("#history-rows tr")
    expect(rows).to_have_count(3)
    page.select_option("#status", "failed")
    page.click("#history-filter-button")
    expect(page).to_have_url(re.compile(r"[?&]status=failed"))
    expect(rows).to_have_count(1)
    expect(rows).to_have_attribute("data-status", "failed")
    expect(rows.locator(".retry-button")).to_be_visible()
    expect(rows).to_contain_text(failed.error_message)

    # The filter survives a reload (it is in the URL), and Retry works from the row: it queues
    # one new attempt, linked to this one, and the row offers no second Retry.
    page.reload()
    expect(page.locator("#status")).to_have_value("failed")
    expect(rows).to_have_count(1)
    rows.locator(".retry-button").click()
    expect(rows.locator(".retry-outcome")).to_have_attribute("data-retry-status", "queued")
    expect(rows.locator(".retry-button")).to_have_count(0)

    page.select_option("#status", "queued")
    page.click("#history-filter-button")
    expect(rows).to_have_count(1)  # the retry, waiting for a worker
    expect(rows.locator(".retry-of")).to_contain_text("Retry of an attempt that failed")


def test_open_a_ledger_event_to_see_its_metadata(admin_page: Page, live):
    page = admin_page
    clip_id = live.add_clip("Match recap")
    account_id = live.add_account("youtube", "acmechannel")
    result = live.publish(clip_id, account_id, platform="youtube", fail=True)

    page.goto("/ledger")
    page.select_option("#event_type", "publish_failed")
    page.click("#ledger-filter-button")
    rows = page.locator("#ledger-rows tr[data-event-type]")
    expect(rows).to_have_count(1)
    event_id = rows.get_attribute("id").removeprefix("event-")

    page.click(f"button#expand-{event_id}")
    metadata = page.locator(f"tr#event-{event_id}-detail pre.metadata")
    expect(metadata).to_be_visible()
    expect(page.locator(f"button#expand-{event_id}")).to_have_attribute("aria-expanded", "true")
    shown = json.loads(metadata.inner_text())
    assert shown["platform"] == "youtube"
    assert shown["error"] == result.error_message
    assert "publish_log_id" in shown

    page.click(f"button#expand-{event_id}")  # a second click closes it
    expect(page.locator(f"tr#event-{event_id}-detail")).to_have_count(0)


def test_a_failed_htmx_request_is_shown_where_the_user_clicked(page: Page, live):
    clip_id = live.add_clip("Match recap")
    live.create_user("editor@example.com", "editor")
    sign_in(page, "editor@example.com")
    page.goto(f"/clips/{clip_id}")
    expect(page.locator("#publish-button")).to_be_visible()
    banner = page.locator("#htmx-error")
    expect(banner).to_be_hidden()

    # An admin makes the editor a viewer while the page is open: the publish is refused (403).
    with live.db() as db:
        db.session.scalar(select(User).where(User.email == "editor@example.com")).role = "viewer"
        db.session.commit()
    page.click("#publish-button")
    expect(banner).to_be_visible()
    refusal = "This page needs the editor role; you are signed in as viewer."  # the server's reason
    expect(banner).to_have_text(refusal)
    expect(page.locator("#publish-button + .htmx-inline-error")).to_have_text(refusal)
    expect(page.locator("#publish-result")).to_be_empty()

    # A server error (500) on another htmx request: the message replaces the previous one.
    page.route(re.compile(r"/clips/accounts-options"), lambda route: route.fulfill(
        status=500, content_type="text/html", body="<h1>500</h1>"))
    page.select_option("#platform", "youtube")
    expect(banner).to_have_text(re.compile(r"Something went wrong on the server \(500\)"))
    expect(page.locator("#platform + .htmx-inline-error")).to_be_visible()
    expect(page.locator("#publish-form > .htmx-inline-error")).to_have_count(0)
