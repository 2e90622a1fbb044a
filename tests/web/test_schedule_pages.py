"""The schedule page: a week of upcoming posts on the user's clock, Monday first, week links,
today marked; Cancel and Reschedule in place; roles; the login matrix of the new pages."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from dashboard.models import PublishLog, utcnow
from dashboard.publishing import background

HTMX = {"HX-Request": "true"}
UTC = UTC


@pytest.fixture
def scheduled(db, make_clip, make_account):
    """scheduled(at, title="Launch teaser", handle="acme") -> the id of a post scheduled for `at` (UTC)."""

    def make(at: datetime, title: str = "Launch teaser", handle: str | None = None, platform="instagram"):
        clip = make_clip(title=title)
        account = make_account(platform, handle) if handle else None
        target = background.Target(platform, account.id if account else None, "", [])
        return background.schedule_publish(db, clip.id, target, at).id

    return make


def next_week_monday(zone: str) -> date:
    today = utcnow().astimezone(ZoneInfo(zone)).date()
    return today - timedelta(days=today.weekday()) + timedelta(days=7)


def day_section(html: str, day: date) -> str:
    match = re.search(rf'<section class="week-day[^"]*" id="day-{day.isoformat()}".*?</section>', html, re.S)
    return match.group(0) if match else ""


def get_log(db, log_id) -> PublishLog:
    db.session.expire_all()
    return db.session.get(PublishLog, log_id)


# Sign-in and roles across the new pages ----------------------------------------------------------

NEW_PAGES = ["/schedule", "/profile", "/batches/{batch}"]
NEW_POSTS = ["/schedule/{log}/cancel", "/schedule/{log}/reschedule", "/batches/{batch}/logs/{log}/retry",
             "/batches/{batch}/logs/{log}/mark-published", "/history/{log}/cancel",
             "/history/{log}/mark-published", "/clips/{clip}/crosspost",
             "/clips/{clip}/scheduled/{log}/cancel", "/profile"]
EDITOR_POSTS = [url for url in NEW_POSTS if url != "/profile"]


@pytest.fixture
def ids(db, make_clip, scheduled):
    log_id = scheduled(utcnow() + timedelta(days=1))
    clip_id = get_log(db, log_id).clip_id
    batch = background.create_batch(db, clip_id, [background.Target("instagram", None, "", [])])
    return {"log": log_id, "clip": clip_id, "batch": batch.id}


@pytest.mark.parametrize("url", NEW_PAGES + NEW_POSTS)
def test_anonymous_users_are_sent_to_sign_in(client, ids, url):
    method = client.get if url in NEW_PAGES else client.post
    response = method(url.format(**ids))
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
@pytest.mark.parametrize("url", NEW_PAGES)
def test_every_role_reads_the_new_pages(client, login, ids, role, url):
    login(role)
    response = client.get(url.format(**ids))
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]


@pytest.mark.parametrize("url", EDITOR_POSTS)
def test_viewers_may_not_act(client, db, login, ids, url):
    login("viewer")
    assert client.post(url.format(**ids), headers=HTMX).status_code == 403
    assert get_log(db, ids["log"]).status == "scheduled"


def test_viewers_see_no_buttons(client, db, user_in, ids):
    user_in("UTC", role="viewer")
    scheduled_at = get_log(db, ids["log"]).scheduled_at
    html = client.get(f"/schedule?week={scheduled_at.date().isoformat()}").get_data(as_text=True)
    assert f'id="post-{ids["log"]}"' in html
    assert "cancel-button" not in html and "reschedule-form" not in html
    batch = client.get(f"/batches/{ids['batch']}").get_data(as_text=True)
    assert "retry-button" not in batch and "mark-button" not in batch


def test_the_nav_has_schedule_and_profile(client, login):
    login("viewer")
    html = client.get("/schedule").get_data(as_text=True)
    assert '<a href="/schedule" aria-current="page">Schedule</a>' in html
    assert re.search(r'<a href="/profile" id="profile-link"[^>]*>Profile</a>', html)


# The week view ----------------------------------------------------------------------------------

def test_a_post_shows_on_its_day_in_the_users_zone(client, db, user_in, scheduled):
    # 20:30 UTC on Monday is 05:30 on Tuesday in Tokyo: Tuesday's column.
    user = user_in("Asia/Tokyo")
    monday = next_week_monday("Asia/Tokyo")
    at = datetime.combine(monday, time(20, 30), tzinfo=UTC)
    log_id = scheduled(at, title="Night shoot", handle="acme")

    html = client.get(f"/schedule?week={monday.isoformat()}").get_data(as_text=True)
    assert f'id="post-{log_id}"' not in day_section(html, monday)
    tuesday = day_section(html, monday + timedelta(days=1))
    post = re.search(rf'<li id="post-{log_id}".*?</li>', tuesday, re.S).group(0)
    assert re.search(r'<strong><time datetime="[^"]*T20:30:00Z"[^>]*>05:30</time></strong>', post)
    assert ">Night shoot</a>" in post and "Instagram · @acme" in post
    assert "Times are in <strong id=\"schedule-zone\">Asia/Tokyo</strong>" in html
    # The same post is on Monday for a user in UTC.
    user.timezone = "UTC"
    db.session.commit()
    html = client.get(f"/schedule?week={monday.isoformat()}").get_data(as_text=True)
    assert f'id="post-{log_id}"' in day_section(html, monday)


def test_weeks_start_on_monday_with_links_and_today(client, user_in):
    user_in("America/New_York")
    today = utcnow().astimezone(ZoneInfo("America/New_York")).date()
    monday = today - timedelta(days=today.weekday())
    html = client.get("/schedule").get_data(as_text=True)
    days = re.findall(r'<section class="week-day[^"]*" id="day-([0-9-]+)"', html)
    assert days == [(monday + timedelta(days=i)).isoformat() for i in range(7)]
    assert re.search(rf'<section class="week-day today" id="day-{today.isoformat()}"[^>]*aria-current="date"', html)
    assert html.count('aria-current="date"') == 1
    assert f'href="/schedule?week={(monday - timedelta(days=7)).isoformat()}"' in html
    assert f'href="/schedule?week={(monday + timedelta(days=7)).isoformat()}"' in html

    # Any day of a week shows that week; another week has no "today".
    thursday = monday + timedelta(days=10)
    other = client.get(f"/schedule?week={thursday.isoformat()}").get_data(as_text=True)
    assert f'data-week="{(monday + timedelta(days=7)).isoformat()}"' in other
    assert 'aria-current="date"' not in other


def test_only_scheduled_posts_of_that_week(client, db, user_in, scheduled):
    user_in("UTC")
    monday = next_week_monday("UTC")
    inside = scheduled(datetime.combine(monday + timedelta(days=6), time(23, 59), tzinfo=UTC))
    after = scheduled(datetime.combine(monday + timedelta(days=7), time(0, 0), tzinfo=UTC))
    cancelled = scheduled(datetime.combine(monday, time(12, 0), tzinfo=UTC))
    background.cancel(db, cancelled)
    html = client.get(f"/schedule?week={monday.isoformat()}").get_data(as_text=True)
    assert re.findall(r'<li id="post-([0-9a-f-]+)"', html) == [str(inside)]
    assert "1 post scheduled this week." in html
    assert str(after) in client.get(f"/schedule?week={(monday + timedelta(days=7)).isoformat()}").get_data(as_text=True)


def test_fragment_for_htmx_and_a_bad_week(client, user_in):
    user_in()
    fragment = client.get("/schedule?week=2026-01-07", headers=HTMX)
    html = fragment.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="schedule-week"') and "<html" not in html
    assert 'data-week="2026-01-05"' in html
    bad = client.get("/schedule?week=someday").get_data(as_text=True)
    assert re.search(r'<small id="week-error" class="field-error">Not a valid date value.</small>', bad)
    assert 'aria-current="date"' in bad  # this week instead


# Cancel and reschedule --------------------------------------------------------------------------

def test_cancel_in_place(client, db, user_in, scheduled):
    user_in()
    log_id = scheduled(utcnow() + timedelta(days=2))
    page = client.get(f"/schedule?week={(utcnow() + timedelta(days=2)).date().isoformat()}").get_data(as_text=True)
    form = re.search(rf'<form[^>]*action="/schedule/{log_id}/cancel".*?</form>', page, re.S).group(0)
    assert 'hx-target="closest li"' in form and 'hx-swap="outerHTML"' in form

    response = client.post(f"/schedule/{log_id}/cancel", data={"confirm": "yes"}, headers=HTMX)
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith(f'<li id="post-{log_id}"') and 'data-status="cancelled"' in html
    assert "Cancelled: it will not go out." in html and "cancel-button" not in html
    assert get_log(db, log_id).status == "cancelled"

    again = client.post(f"/schedule/{log_id}/cancel", data={"confirm": "yes"}, headers=HTMX).get_data(as_text=True)
    assert "Not cancelled: this post is cancelled and can no longer be cancelled" in again


def test_cancel_without_htmx_redirects_to_the_week(client, db, user_in, scheduled):
    user_in()
    log_id = scheduled(utcnow() + timedelta(days=2))
    response = client.post(f"/schedule/{log_id}/cancel", data={"week": "2026-01-05", "confirm": "yes"})
    assert response.status_code == 302 and response.headers["Location"] == "/schedule?week=2026-01-05"
    assert get_log(db, log_id).status == "cancelled"


def test_reschedule_reads_the_users_clock(client, db, user_in, scheduled):
    user_in("Europe/Paris")
    monday = next_week_monday("Europe/Paris")
    log_id = scheduled(datetime.combine(monday, time(8, 0), tzinfo=UTC))
    wednesday = monday + timedelta(days=2)

    response = client.post(f"/schedule/{log_id}/reschedule", headers=HTMX, data={
        "scheduled_at": f"{wednesday.isoformat()}T18:45", "week": monday.isoformat()})
    html = response.get_data(as_text=True)

    expected = datetime.combine(wednesday, time(18, 45), tzinfo=ZoneInfo("Europe/Paris")).astimezone(UTC)
    log = get_log(db, log_id)
    assert (log.status, log.scheduled_at, log.next_attempt_at) == ("scheduled", expected, expected)
    assert html.lstrip().startswith('<section id="schedule-week"')
    assert f'id="post-{log_id}"' in day_section(html, wednesday)
    assert f'id="post-{log_id}"' not in day_section(html, monday)
    assert re.search(r'id="moved-note"[^>]*>Rescheduled to <time[^>]*>'
                     + f'{wednesday.isoformat()} 18:45 <span class="tz">CES?T, UTC\\+0[12]:00</span>', html)


def test_reschedule_to_another_week_links_there(client, db, user_in, scheduled):
    user_in()
    monday = next_week_monday("UTC")
    log_id = scheduled(datetime.combine(monday, time(8, 0), tzinfo=UTC))
    later = monday + timedelta(days=9)
    html = client.post(f"/schedule/{log_id}/reschedule", headers=HTMX, data={
        "scheduled_at": f"{later.isoformat()}T10:00", "week": monday.isoformat()}).get_data(as_text=True)
    assert f'id="post-{log_id}"' not in html
    assert f'<a href="/schedule?week={later.isoformat()}">See that week</a>' in html


@pytest.mark.parametrize("value, message", [
    ("2020-01-01T10:00", "is in the past"),
    ("", "choose the new date and time"),
])
def test_reschedule_refused_next_to_its_input(client, db, user_in, scheduled, value, message):
    user_in()
    monday = next_week_monday("UTC")
    at = datetime.combine(monday, time(8, 0), tzinfo=UTC)
    log_id = scheduled(at)
    html = client.post(f"/schedule/{log_id}/reschedule", headers=HTMX, data={
        "scheduled_at": value, "week": monday.isoformat()}).get_data(as_text=True)
    assert re.search(rf'<small id="reschedule-{log_id}-error" class="field-error" role="alert">{message}</small>', html)
    assert '<details class="reschedule" open>' in html
    assert get_log(db, log_id).scheduled_at == at


def test_a_started_post_cannot_be_rescheduled(client, db, user_in, scheduled):
    user_in()
    log_id = scheduled(utcnow() + timedelta(days=1))
    log = get_log(db, log_id)
    log.status = "publishing"
    db.session.commit()
    when = (utcnow() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    html = client.post(f"/schedule/{log_id}/reschedule", headers=HTMX,
                       data={"scheduled_at": when}).get_data(as_text=True)
    assert "Not rescheduled: this post is publishing; only scheduled posts can be rescheduled" in html
    assert client.post(f"/schedule/{uuid.uuid4()}/reschedule", headers=HTMX,
                       data={"scheduled_at": when}).status_code == 404
    assert db.session.scalars(select(PublishLog)).one().status == "publishing"


def test_cancel_asks_first(client, db, user_in, scheduled):
    user_in()
    when = utcnow() + timedelta(days=2)
    log_id = scheduled(when)
    page = client.get(f"/schedule?week={when.date().isoformat()}").get_data(as_text=True)
    form = re.search(rf'<form[^>]*action="/schedule/{log_id}/cancel"[^>]*>', page, re.S).group(0)
    assert 'hx-confirm="Cancel the post of “' in form and """hx-vals='{"confirm": "yes"}'""" in form
    html = client.post(f"/schedule/{log_id}/cancel", data={"week": "2026-01-05"}).get_data(as_text=True)
    assert '<h1 id="confirm-question">Cancel this scheduled post?</h1>' in html
    assert '<input type="hidden" name="week" value="2026-01-05">' in html  # carried to the real POST
    assert get_log(db, log_id).status == "scheduled"
