"""In the browser, with a real queue worker beside the live server: schedule a post a few seconds
ahead on the user's clock, find it on the schedule, see it published; cross-post to a main
account and its satellites and watch the batch page's rows update until it is done."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from dashboard.models import PublishLog, utcnow
from dashboard.publishing.outcome import PlatformOutcome
from dashboard.publishing.simulator import PlatformSimulator

from .conftest import screenshot
from queue_support import InProcessWorker

pytestmark = pytest.mark.browser

ZONE = "Asia/Kolkata"  # UTC+05:30: a wrong conversion shows at once


@pytest.fixture
def start_worker(live):
    """start_worker(threads) -> a Huey consumer in this process running the live app's tasks."""
    workers: list[InProcessWorker] = []

    def start(threads: int = 4) -> InProcessWorker:
        worker = InProcessWorker(live.app, threads)
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.stop()


def set_zone(page: Page, zone: str) -> None:
    """Choose the time zone on the profile page, as a person would."""
    page.click("#profile-link")
    page.select_option("#timezone", zone)
    page.click("#profile-submit")
    expect(page.locator("#flashes")).to_contain_text(f"times are shown in {zone}")


def test_schedule_a_post_see_it_on_the_schedule_then_published(admin_page: Page, live, start_worker):
    page = admin_page
    clip_id = live.add_clip("Evening teaser")
    account_id = live.add_account("instagram", "acme.sports")
    set_zone(page, ZONE)

    page.goto(f"/clips/{clip_id}")
    page.select_option("#social_account_id", str(account_id))
    page.fill("#caption", "Tonight at eight")
    expect(page.locator("#scheduled_at")).to_be_hidden()  # only asked for when scheduling
    page.check("#when-1")
    expect(page.locator("#scheduled_at")).to_be_visible()
    expect(page.locator("#scheduled_at-help")).to_contain_text(ZONE)
    # A person schedules to the minute; to keep this test at 3 s the input takes seconds too
    # (the server reads them either way).
    page.locator("#scheduled_at").evaluate("el => el.step = 1")
    due = (utcnow() + timedelta(seconds=3)).replace(microsecond=0)
    local = due.astimezone(ZoneInfo(ZONE))
    page.fill("#scheduled_at", local.strftime("%Y-%m-%dT%H:%M:%S"))
    page.click("#publish-button")

    scheduled = page.locator("#publish-scheduled")
    expect(scheduled).to_contain_text(f"Scheduled for {local:%Y-%m-%d %H:%M} IST, UTC+05:30")  # {ZONE}'s clock, named
    expect(scheduled).to_contain_text("@acme.sports on Instagram")
    expect(page.locator("#cancel-scheduled")).to_be_visible()
    screenshot(page, "clip-scheduled")
    with live.db() as db:
        log = db.session.scalars(db.select(PublishLog)).one()
        assert (log.status, log.scheduled_at) == ("scheduled", due)

    # On the schedule: the day of its local date, its local time, its clip and account.
    page.click("#scheduled-week-link")
    day = page.locator(f"#day-{local.date().isoformat()}")
    post = day.locator(f"#post-{log.id}")
    expect(post).to_contain_text(local.strftime("%H:%M"))
    expect(post).to_contain_text("Evening teaser")
    expect(post).to_contain_text("Instagram · @acme.sports")
    expect(post.locator(".cancel-button")).to_be_visible()
    expect(page.locator("#schedule-zone")).to_have_text(ZONE)
    screenshot(page, "schedule")

    # A worker runs: the post goes out at its time, and the history says so.
    start_worker(2)
    page.goto("/history")
    row = page.locator(f"#log-{log.id}")
    deadline = time.monotonic() + 20
    while row.get_attribute("data-status") != "success":
        assert time.monotonic() < deadline, f"still {row.get_attribute('data-status')}"
        page.wait_for_timeout(500)
        page.reload()
    expect(row.locator(".badge-success")).to_have_text("Published")
    expect(row.locator("td.attempts")).to_have_text("1")
    expect(row.locator("a[href^='https://www.instagram.com/reel/']")).to_be_visible()
    # Gone from the schedule once it went out.
    page.goto(f"/schedule?week={local.date().isoformat()}")
    expect(page.locator(f"#post-{log.id}")).to_have_count(0)


def test_crosspost_to_a_main_account_and_its_satellites_live(admin_page: Page, live, start_worker,
                                                             monkeypatch):
    page = admin_page
    clip_id = live.add_clip("Season opener")
    main_id = live.add_account("instagram", "brand", display_name="Brand")
    fr_id = live.add_account("instagram", "brand.fr", parent_account_id=main_id)
    live.add_account("instagram", "brand.de", parent_account_id=main_id)
    live.add_account("tiktok", "brand.tok")

    # @brand.de's first call fails for good; every call takes a visible moment.
    real = PlatformSimulator.publish
    de_down = [True]

    def publish(self, job):
        if job.account_handle == "brand.de" and de_down:
            de_down.pop()
            return PlatformOutcome(False, error_message="invalid_media: codec not supported",
                                   error_kind="permanent")
        return real(self, job)

    monkeypatch.setattr(PlatformSimulator, "publish", publish)
    live.simulator(SIMULATOR_MIN_DELAY=1.2, SIMULATOR_MAX_DELAY=1.6)
    start_worker(2)  # two at a time: three targets take two rounds

    page.goto(f"/clips/{clip_id}")
    page.check(f"#xp-all-{main_id}")
    page.fill("#xp-caption", "The season starts now")
    page.fill("#xp-hashtags", "opener")
    page.locator(f"#xp-choice-{fr_id} summary").click()
    page.fill(f"#xp-caption_{fr_id.hex}", "La saison commence")
    page.click("#crosspost-button")

    expect(page).to_have_url(re.compile(r"/batches/[0-9a-f-]{36}$"))
    batch_id = page.url.rsplit("/", 1)[1]
    progress = page.locator("#batch-progress")
    expect(page.locator("#batch-rows tbody tr")).to_have_count(3)
    expect(progress).to_have_attribute("data-batch-status", "running")
    expect(progress).to_have_attribute("hx-trigger", "load delay:1s")
    # The rows change under our eyes (no reload): some target is seen publishing...
    expect(page.locator("#batch-rows .badge-publishing").first).to_be_visible(timeout=10_000)
    # ...and the batch ends partial: two published, @brand.de failed with its reason.
    expect(progress).to_have_attribute("data-batch-status", "partial", timeout=20_000)
    expect(page.locator("#batch-counts")).to_have_text(re.compile(r"2\s+succeeded,\s+1\s+failed,\s+0\s+waiting"))
    failed_row = page.locator("#batch-rows tr[data-status='failed']")
    expect(failed_row).to_contain_text("@brand.de")
    expect(failed_row).to_contain_text("invalid_media: codec not supported")
    expect(progress).not_to_have_attribute("hx-trigger", re.compile(".*"))

    screenshot(page, "batch-partial")

    # Done means done: no more polling requests.
    polls = []
    page.on("request", lambda request: polls.append(request.url) if f"/batches/{batch_id}" in request.url else None)
    page.wait_for_timeout(2500)
    assert polls == []

    # Retry the failed target: the batch runs (and polls) again until every target succeeded.
    failed_row.locator(".retry-button").click()
    expect(progress).to_have_attribute("data-batch-status", "succeeded", timeout=20_000)
    expect(page.locator("#batch-counts")).to_have_text(re.compile(r"3\s+succeeded,\s+0\s+failed,\s+0\s+waiting"))
    expect(page.locator("#batch-status")).to_have_text("Succeeded")
    expect(page.locator("#batch-rows tr[data-status='success']")).to_have_count(3)
    expect(page.locator("#batch-rows .retry-of")).to_contain_text("a retry of an earlier attempt")
    assert len(polls) >= 2  # it polled while the retry ran
    screenshot(page, "batch")

    with live.db() as db:
        captions = {row.social_account.handle: row.caption for row in db.session.scalars(db.select(PublishLog))}
    assert captions == {"brand": "The season starts now", "brand.fr": "La saison commence",
                        "brand.de": "The season starts now"}


def test_double_click_and_a_repeated_post_publish_once(admin_page: Page, live):
    page = admin_page
    clip_id = live.add_clip("Double trouble")
    live.simulator(SIMULATOR_MIN_DELAY=0.5, SIMULATOR_MAX_DELAY=0.5)
    page.goto(f"/clips/{clip_id}")
    page.dblclick("#publish-button")
    expect(page.locator("#publish-success")).to_be_visible()
    with live.db() as db:
        assert len(db.session.scalars(db.select(PublishLog)).all()) == 1

    # The same form sent twice behind htmx's back (a resend, a flaky proxy): the second POST
    # gets the first answer. The form now holds the fresh key its last answer brought.
    statuses = page.evaluate("""async () => {
        const form = document.getElementById('publish-form');
        const body = new URLSearchParams(new FormData(form));
        const send = () => fetch(form.action, {method: 'POST', body, headers: {'HX-Request': 'true'}})
            .then(r => r.text());
        const first = await send();
        const second = await send();
        return [first.includes('publish-success'), second.includes('nothing was published again')];
    }""")
    assert statuses == [True, True]
    with live.db() as db:
        assert len(db.session.scalars(db.select(PublishLog)).all()) == 2


def test_an_exhausted_quota_offers_the_next_slot(admin_page: Page, live, monkeypatch):
    import copy

    page = admin_page
    limits = copy.deepcopy(live.app.config["PLATFORM_LIMITS"])
    limits["instagram"]["posts_per_24h"] = 1
    monkeypatch.setitem(live.app.config, "PLATFORM_LIMITS", limits)
    clip_id = live.add_clip("One too many")
    account_id = live.add_account("instagram", "busy")
    live.publish(clip_id, account_id)  # the day's only post

    page.goto(f"/clips/{clip_id}")
    page.select_option("#social_account_id", str(account_id))
    page.click("#publish-button")
    expect(page.locator("#social_account_id-error")).to_contain_text("@busy has made 1 of its 1 posts")
    offer = page.locator("#schedule-next-slot")
    expect(offer).to_contain_text("Schedule it for")
    offer.click()
    expect(page.locator("#publish-scheduled")).to_contain_text("Scheduled for")
    with live.db() as db:
        statuses = sorted(row.status for row in db.session.scalars(db.select(PublishLog)))
    assert statuses == ["scheduled", "success"]


def test_home_retry_follows_the_new_attempt_until_it_is_published(admin_page: Page, live, start_worker):
    """Issue 12, item 4: a retry from home shows as in progress, then as published, by itself;
    the dealt-with failure leaves the list on the next visit."""
    page = admin_page
    clip_id = live.add_clip("Match recap")
    account_id = live.add_account("tiktok", "acme.sports")
    failed = live.publish(clip_id, account_id, platform="tiktok", fail=True)
    assert not failed.success
    live.simulator(failure_rate=0.0, SIMULATOR_MIN_DELAY=1.0, SIMULATOR_MAX_DELAY=1.0)
    start_worker(2)

    page.goto("/")
    page.locator("#failures-table .retry-button").click()
    state = page.locator("#failures-table .retry-state")
    expect(state).to_contain_text(re.compile("Retry queued|Retrying"))
    expect(page.locator("#failures-table .retry-button")).to_have_count(0)
    expect(state).to_have_attribute("data-status", "success", timeout=20_000)  # it followed the attempt
    expect(state.locator(".retry-url")).to_have_attribute("href", re.compile(r"^https://"))

    page.reload()
    expect(page.locator("#failures-table .retry-button")).to_have_count(0)


def test_retry_all_failed_on_the_batch_page(admin_page: Page, live, start_worker):
    """Issue 12, item 8: one button retries every failed target; the batch runs again to success."""
    from dashboard.publishing import background

    page = admin_page
    clip_id = live.add_clip("Match recap")
    targets = [live.add_account("instagram", handle) for handle in ("acme", "acme.fr", "acme.de")]
    with live.db() as db:
        batch = background.create_batch(db, clip_id, [background.Target("instagram", account, "Hi", [])
                                                      for account in targets])
        for row in db.session.scalars(db.select(PublishLog).where(PublishLog.batch_id == batch.id)):
            row.status, row.error_message = "failed", "Simulated outage"
        db.session.commit()
        batch_id = batch.id
    live.simulator(failure_rate=0.0)
    start_worker(2)

    page.goto(f"/batches/{batch_id}")
    page.click("#retry-all-failed button")
    progress = page.locator("#batch-progress")
    expect(progress).to_have_attribute("data-batch-status", "succeeded", timeout=20_000)
    expect(page.locator("#batch-rows .retry-of")).to_have_count(3)
    expect(page.locator("#retry-all-failed")).to_have_count(0)
