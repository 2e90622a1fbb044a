"""One time zone everywhere: every moment on every page on the user's clock, its zone named
(abbreviation and offset, DST included), and date filters read as days on that clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from dashboard.models import LedgerEvent, PublishLog
from dashboard.users import create_token
from dashboard.web.filters import timezone_names

UTC = UTC
HTMX = {"HX-Request": "true"}
SUMMER = datetime(2026, 7, 1, 16, 5, 9, tzinfo=UTC)   # 09:05 PDT in Los Angeles
WINTER = datetime(2026, 1, 15, 16, 5, 9, tzinfo=UTC)  # 08:05 PST in Los Angeles


def add_log(db, clip, at, status="failed"):
    log = PublishLog(clip_id=clip.id, platform="instagram", status=status, provider="simulator",
                     caption="Hello", hashtags=[], requested_at=at,
                     error_message="Simulated rate limit" if status == "failed" else None)
    db.session.add(log)
    db.session.commit()
    return log.id


def shown(html: str, moment: datetime) -> list[str]:
    """The text of every <time> element of `moment` in the page."""
    iso = moment.isoformat().replace("+00:00", "Z")
    return [re.sub(r"<[^>]+>", "", inner)
            for inner in re.findall(rf'<time datetime="{re.escape(iso)}"[^>]*>(.*?)</time>', html)]


def test_history_shows_summer_and_winter_times_each_with_its_own_clock(client, db, user_in, make_clip):
    user_in("America/Los_Angeles")
    clip = make_clip()
    add_log(db, clip, SUMMER)
    add_log(db, clip, WINTER)
    html = client.get("/history").get_data(as_text=True)
    assert shown(html, SUMMER) == ["2026-07-01 09:05:09 PDT, UTC-07:00"]
    assert shown(html, WINTER) == ["2026-01-15 08:05:09 PST, UTC-08:00"]
    assert "(UTC)" not in html


def test_every_page_with_moments_uses_the_profile_zone(client, db, user_in, make_clip):
    user = user_in("Asia/Kolkata", role="admin")
    clip = make_clip()
    clip.created_at = clip.updated_at = WINTER
    db.session.add(LedgerEvent(event_type="clip_created", entity_type="clip", entity_id=clip.id,
                               event_metadata={}, created_at=WINTER))
    db.session.commit()
    add_log(db, clip, WINTER)
    token = create_token(db, user.id, "ci").token
    token.created_at = token.last_used_at = WINTER
    db.session.commit()
    expected = "2026-01-15 21:35 IST, UTC+05:30"
    for url in ("/", "/tokens/"):
        assert expected in shown(client.get(url).get_data(as_text=True), WINTER), url
    for url in ("/clips", f"/clips/{clip.id}", "/history", "/ledger"):
        assert expected.replace("21:35", "21:35:09") in shown(client.get(url).get_data(as_text=True), WINTER), url


@pytest.mark.parametrize("zone, inside, outside", [
    # Los Angeles' 1 March runs from 08:00 UTC on 1 March to 08:00 UTC on 2 March.
    ("America/Los_Angeles", [datetime(2026, 3, 1, 8, 0, tzinfo=UTC), datetime(2026, 3, 2, 7, 59, tzinfo=UTC)],
     [datetime(2026, 3, 1, 7, 59, tzinfo=UTC), datetime(2026, 3, 2, 8, 0, tzinfo=UTC)]),
    # Kolkata's 1 March runs from 18:30 UTC on 28 February to 18:30 UTC on 1 March.
    ("Asia/Kolkata", [datetime(2026, 2, 28, 18, 30, tzinfo=UTC), datetime(2026, 3, 1, 18, 29, tzinfo=UTC)],
     [datetime(2026, 2, 28, 18, 29, tzinfo=UTC), datetime(2026, 3, 1, 18, 30, tzinfo=UTC)]),
])
def test_history_and_ledger_date_filters_select_by_local_day(client, db, user_in, make_clip, zone, inside, outside):
    user_in(zone)
    clip = make_clip()
    logs = {at: add_log(db, clip, at) for at in inside + outside}
    events = {}
    for at in inside + outside:
        event = LedgerEvent(event_type="publish_failed", entity_type="clip", entity_id=clip.id,
                            event_metadata={}, created_at=at)
        db.session.add(event)
        db.session.commit()
        events[at] = str(event.id)
    history = client.get("/history?from=2026-03-01&to=2026-03-01", headers=HTMX).get_data(as_text=True)
    assert set(re.findall(r'<tr id="log-([0-9a-f-]{36})"', history)) == {str(logs[at]) for at in inside}
    ledger = client.get("/ledger?event_type=publish_failed&from=2026-03-01&to=2026-03-01",
                        headers=HTMX).get_data(as_text=True)
    assert set(re.findall(r'<tr id="event-([0-9a-f-]{36})"', ledger)) == {events[at] for at in inside}


def test_home_counts_publishes_since_the_users_midnight(client, db, user_in, make_clip, monkeypatch):
    from dashboard import stats

    user_in("Asia/Kolkata")
    clip = make_clip()
    now = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)  # 01:30 on 2 March in Kolkata
    monkeypatch.setattr(stats, "utcnow", lambda: now)
    add_log(db, clip, datetime(2026, 3, 1, 18, 31, tzinfo=UTC))  # 00:01 in Kolkata: today
    add_log(db, clip, datetime(2026, 3, 1, 18, 29, tzinfo=UTC))  # 23:59 the day before
    html = client.get("/").get_data(as_text=True)
    assert re.search(r'id="count-publishes-today"><span class="count">1</span>', html)
    assert "since midnight IST, UTC+05:30" in html


def test_the_zone_picker_lists_real_zones_with_their_offsets(client, user_in):
    user_in("Asia/Kolkata")
    html = client.get("/profile").get_data(as_text=True)
    assert '<option selected value="Asia/Kolkata">Asia/Kolkata (IST, UTC+05:30)</option>' in html
    for alias in ("US/Pacific", "Etc/GMT+5", "Asia/Calcutta", "EST5EDT"):
        assert f'value="{alias}"' not in html
    assert "posix/Europe/Paris" not in timezone_names() and "Europe/Paris" in timezone_names()


def test_a_saved_alias_stays_selected(client, user_in):
    user_in("US/Pacific")
    html = client.get("/profile").get_data(as_text=True)
    assert re.search(r'<option selected value="US/Pacific">US/Pacific \(P[SD]T, UTC-0[78]:00\)</option>', html)


def test_status_names_are_the_same_in_the_filter_and_the_badges(client, db, user_in, make_clip):
    user_in("UTC")
    add_log(db, make_clip(), WINTER, status="success")
    html = client.get("/history").get_data(as_text=True)
    assert '<option value="success">Published</option>' in html
    assert '<span class="badge badge-success">Published</span>' in html
    assert "Success<" not in html
