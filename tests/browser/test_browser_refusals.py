"""A refused button says why, where the user clicked: the server's own reason (a conflict, an
account deactivated since, a role), never a blanket "The form expired"."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from dashboard import accounts
from dashboard.models import PublishLog
from dashboard.publishing import background
from dashboard.schemas import AccountPatch

pytestmark = pytest.mark.browser


def failed_batch(live):
    """A cross-post to two Instagram accounts whose second target failed; (batch id, failed log id,
    the failed target's account id)."""
    first = live.add_account("instagram", "acme.sports")
    second = live.add_account("instagram", "acme.sports.de")
    clip_id = live.add_clip("Match recap")
    with live.db() as db:
        batch = background.create_batch(db, clip_id, [
            background.Target("instagram", first, "Hello", []),
            background.Target("instagram", second, "Hallo", []),
        ])
        rows = {row.social_account_id: row for row in
                db.session.scalars(select(PublishLog).where(PublishLog.batch_id == batch.id))}
        rows[first].status = "success"
        rows[second].status, rows[second].error_message = "failed", "Simulated rate limit"
        db.session.commit()
        return batch.id, rows[second].id, second


def test_retrying_twice_from_two_tabs_says_it_was_already_retried(open_page, live):
    batch_id, log_id, _ = failed_batch(live)
    first = open_page(1280)
    second = first.context.new_page()
    for tab in (first, second):
        tab.goto(f"/batches/{batch_id}")
    first.click(f"#target-{log_id} .retry-button")
    expect(first.locator(f"#target-{log_id}")).to_have_count(0)  # the retry is the row now
    second.click(f"#target-{log_id} .retry-button")
    expect(second.locator(".batch-error")).to_have_text(
        re.compile(r"Not retried: this post was already retried"))
    expect(second).to_have_url(re.compile(rf"/batches/{batch_id}$"))
    expect(second.locator("#htmx-error")).to_be_hidden()
    expect(second.get_by_text("The form expired")).to_have_count(0)


def test_a_retry_refused_by_validation_stays_on_the_batch_page_with_the_reason(admin_page: Page, live):
    batch_id, log_id, account_id = failed_batch(live)
    page = admin_page
    page.goto(f"/batches/{batch_id}")
    with live.db() as db:  # deactivated by someone else while the page is open
        accounts.update_account(db, account_id, AccountPatch(active=False))
    page.click(f"#target-{log_id} .retry-button")
    expect(page.locator(f"#target-{log_id} .row-error")).to_have_text("Not retried: @acme.sports.de is inactive")
    expect(page.locator("#batch-rows")).to_be_visible()
    expect(page.locator("#htmx-error")).to_be_hidden()


def test_a_refusal_answered_with_an_error_page_shows_its_message_beside_the_button(admin_page: Page, live):
    clip_id = live.add_clip("Match recap")
    live.publish(clip_id, fail=True)
    page = admin_page
    page.goto("/")
    button = page.locator("#failures-table .retry-button").first
    with live.db() as db:  # the attempt disappears while the page is open
        db.session.execute(PublishLog.__table__.delete())
        db.session.commit()
    button.click()
    message = "That publish attempt no longer exists."
    expect(page.locator(".retry-button + .htmx-inline-error")).to_have_text(message)
    expect(page.locator("#htmx-error")).to_have_text(message)
