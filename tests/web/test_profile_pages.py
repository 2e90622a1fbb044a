"""The profile page: the user's time zone, saved by users.set_timezone with a ledger event."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from dashboard.errors import InvalidInput
from dashboard.models import LedgerEvent, User
from dashboard.users import set_timezone


def zone_of(db, user_id) -> str:
    db.session.expire_all()
    return db.session.get(User, user_id).timezone


def timezone_events(db) -> list[dict]:
    db.session.expire_all()
    return [e.event_metadata for e in db.session.scalars(
        select(LedgerEvent).where(LedgerEvent.event_type == "user_timezone_changed"))]


def test_the_profile_shows_the_zone_select_with_utc_by_default(client, login):
    user = login("viewer")
    html = client.get("/profile").get_data(as_text=True)
    assert f'<strong id="profile-email">{user.email}</strong>' in html
    select_html = re.search(r'<select[^>]*id="timezone".*?</select>', html, re.S).group(0)
    zones = re.findall(r'<option[^>]*value="([^"]+)"', select_html)
    assert zones[0] == "UTC" and zones[1:] == sorted(zones[1:])
    assert {"Europe/Paris", "America/New_York", "Asia/Tokyo"} <= set(zones)
    assert re.findall(r'<option selected value="([^"]+)"', select_html) == ["UTC"]


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
def test_every_role_saves_their_own_zone(client, db, login, role):
    user = login(role)
    response = client.post("/profile", data={"timezone": "Europe/Paris"})
    assert response.status_code == 302 and response.headers["Location"] == "/profile"
    assert zone_of(db, user.id) == "Europe/Paris"
    assert timezone_events(db) == [{"email": user.email, "timezone": "Europe/Paris", "previous_timezone": "UTC"}]
    html = client.get("/profile").get_data(as_text=True)
    assert "Saved: times are shown in Europe/Paris." in html
    assert '<option selected value="Europe/Paris">' in html
    assert '<span id="profile-zone">Europe/Paris</span>' in html


def test_an_unknown_zone_is_refused_inline(client, db, login):
    user = login("editor")
    response = client.post("/profile", data={"timezone": "Mars/Olympus_Mons"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert re.search(r'<small id="timezone-error" class="field-error">Not a valid choice.?</small>', html)
    assert zone_of(db, user.id) == "UTC" and timezone_events(db) == []


def test_set_timezone_checks_the_name_and_records_only_changes(db, make_user):
    user = make_user("viewer")
    with pytest.raises(InvalidInput) as refused:
        set_timezone(db, user.id, "Europe/Atlantis")
    assert refused.value.errors[0].field == "timezone"
    set_timezone(db, user.id, "Asia/Tokyo")
    set_timezone(db, user.id, "Asia/Tokyo")  # unchanged: no second event
    assert zone_of(db, user.id) == "Asia/Tokyo"
    assert [e["timezone"] for e in timezone_events(db)] == ["Asia/Tokyo"]


def test_the_nav_links_the_profile(client, login):
    login("viewer")
    html = client.get("/").get_data(as_text=True)
    assert re.search(r'<a href="/profile" id="profile-link" title="Your profile: time zone UTC"', html)
