"""The clip page's publish panel and cross-post picker in Chromium, on a phone and a laptop
(issue 12, items 7 and 8): what the button says, the hashtag rule, live lengths, the result
naming the account and taking focus, the picker's tree and toggle, a scheduled cross-post and
the batch page's captions; each page fits the window and passes axe."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from dashboard.models import PublishLog, User, utcnow

from .conftest import ADMIN_EMAIL, screenshot
from .test_browser_accessibility import violations
from .test_browser_layout import overflow

pytestmark = pytest.mark.browser

WIDTHS = (390, 1280)


def active_id(page: Page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


def set_zone(live, zone: str) -> None:
    with live.db() as db:
        db.session.scalar(select(User).where(User.email == ADMIN_EMAIL)).timezone = zone
        db.session.commit()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_publish_panel_says_what_it_does_and_what_it_did(clip_page, live, live_worker, width):
    page, _ = clip_page(width)
    button = page.locator("#publish-button")
    expect(button).to_have_accessible_name("Publish")
    page.check("#when-1")
    expect(button).to_have_accessible_name("Schedule")
    page.check("#when-0")
    expect(button).to_have_accessible_name("Publish")

    # Lengths follow the typing, per platform, as the engine counts them.
    page.select_option("#social_account_id", label="@acme.sports")
    page.fill("#caption", "Früh los 🚀")
    page.fill("#hashtags", "launch, springsale")
    text = "Früh los 🚀\n\n#launch #springsale"
    expect(page.locator("#count-instagram .count-used")).to_have_text(str(len(text)))
    expect(page.locator("#count-tiktok .count-used")).to_have_text(str(len(text.encode("utf-16-le")) // 2))
    expect(page.locator("#count-youtube .count-used")).to_have_text(str(len(text.encode())))
    page.fill("#caption", "x" * 2195)
    expect(page.locator("#count-instagram")).to_have_class("caption-count over")
    over_by = len("x" * 2195 + "\n\n#launch #springsale") - 2200
    expect(page.locator("#count-instagram .count-over")).to_have_text(f" (over by {over_by})")
    page.fill("#caption", "Spring is here")

    # The example's rule: a tag is one word.
    page.fill("#hashtags", "launch, spring sale")
    button.click()
    expect(page.locator("#hashtags-error")).to_contain_text("\u201cspring sale\u201d is not one hashtag")
    page.fill("#hashtags", "launch, springsale")
    page.locator("#publish-button").click()

    # The result names the account and platform, and takes the focus (it is aria-live).
    result = page.locator("#publish-result")
    expect(result.locator("#publish-success")).to_be_visible()
    expect(result.locator("#publish-target")).to_have_text("@acme.sports on Instagram")
    expect(result).to_be_focused()
    assert overflow(page) == 0
    screenshot(page, f"publish-panel-{width}")
    assert violations(page) == []

    # A failure, then Retry: the focus lands on the new result each time.
    live.simulator(failure_rate=1.0)
    page.locator("#publish-button").click()
    expect(result.locator("#publish-failure")).to_be_visible()
    expect(result).to_be_focused()
    page.locator("#caption").focus()
    page.locator("#retry-button").click()
    # It failed again (through the queue, followed by the panel): a new Retry, of the retry.
    expect(result.locator("#publish-final #retry-button")).to_be_visible(timeout=10_000)
    expect(result).to_be_focused()
    assert active_id(page) == "publish-result"


@pytest.mark.parametrize("width", WIDTHS)
def test_the_crosspost_tree_schedules_with_a_caption_per_account(open_page, live, width):
    clip_id = live.add_clip("Season opener")
    main = live.add_account("instagram", "brand", display_name="Brand")
    fr = live.add_account("instagram", "brand.fr", parent_account_id=main)
    de = live.add_account("instagram", "brand.de", parent_account_id=main)
    live.add_account("tiktok", "brandtok")
    set_zone(live, "America/New_York")
    page = open_page(width)
    page.goto(f"/clips/{clip_id}")
    toggle, main_box = page.locator(f"#xp-all-{main}"), page.locator(f"#xp-account-{main}")
    satellites = [page.locator(f"#xp-account-{fr}"), page.locator(f"#xp-account-{de}")]

    # The toggle ticks the main account and its satellites; unticking one turns it off.
    toggle.check()
    for box in [main_box, *satellites]:
        expect(box).to_be_checked()
    satellites[1].uncheck()
    expect(toggle).not_to_be_checked()
    expect(main_box).to_be_checked()
    satellites[1].check()
    expect(toggle).to_be_checked()

    # Satellites are indented under their main account; each own caption opens under its box.
    main_x = main_box.bounding_box()["x"]
    for box in satellites:
        assert box.bounding_box()["x"] > main_x + 10
    choice = page.locator(f"#xp-choice-{fr}")
    label_box = choice.locator(f"label[for='xp-account-{fr}']").bounding_box()
    summary = choice.locator("summary")
    assert 0 <= summary.bounding_box()["y"] - (label_box["y"] + label_box["height"]) < 40
    summary.click()
    page.fill(f"#xp-caption_{fr.hex}", "La saison commence")
    page.fill("#xp-caption", "The season starts")
    page.fill("#xp-hashtags", "opener")

    # Scheduled, on the user's clock.
    zone = ZoneInfo("America/New_York")
    local = datetime.combine((utcnow().astimezone(zone) + timedelta(days=2)).date(), time(8, 15), tzinfo=zone)
    page.check("#xp-when-1")
    expect(page.locator("#crosspost-button")).to_have_accessible_name("Schedule cross-post")
    page.fill("#xp-scheduled_at", local.strftime("%Y-%m-%dT%H:%M"))
    assert overflow(page) == 0
    screenshot(page, f"crosspost-tree-{width}")
    page.locator("#crosspost-button").click()

    page.wait_for_url("**/batches/*")
    rows = page.locator("#batch-rows tbody tr")
    expect(rows).to_have_count(3)
    for row in rows.all():
        expect(row).to_have_attribute("data-status", "scheduled")
    fr_row = page.locator("#batch-rows tbody tr", has_text="@brand.fr")
    expect(fr_row.locator(".target-caption")).to_contain_text("La saison commence")
    expect(page.locator("#batch-rows tbody tr", has_text="@brand.de").locator(".target-caption")).to_contain_text(
        "The season starts")
    expect(fr_row).to_contain_text("scheduled for " + local.strftime("%Y-%m-%d %H:%M"))
    with live.db() as db:
        times = set(db.session.scalars(select(PublishLog.scheduled_at)))
    assert {t.replace(tzinfo=ZoneInfo("UTC")) if t.tzinfo is None else t for t in times} == {local}
    assert overflow(page) == 0
    screenshot(page, f"batch-scheduled-{width}")
    assert violations(page) == []
