"""Time zones at daylight-saving changes: a local time that does not exist is refused with the
nearest valid times; one that happens twice is refused unless the client says which (`fold` or
an offset); an offset that contradicts `timezone` is refused. Each is a 400 naming the field,
and nothing is written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from dashboard.models import PublishLog

# Europe/Paris in 2027: clocks go forward on 28 March at 02:00 and back on 31 October at 03:00.
GAP, OVERLAP = "2027-03-28T02:30:00", "2027-10-31T02:30:00"


@pytest.fixture
def api(client, api_headers):
    """POST as an editor with a token: api(url, json) -> response."""
    headers = api_headers("editor")
    return lambda url, body: client.post(url, json=body, headers=headers)


def schedule(api, clip, **when):
    return api("/publishing/schedule", {"clip_id": str(clip.id), "platform": "tiktok", **when})


def count_logs(db) -> int:
    db.session.remove()
    return db.session.scalar(select(func.count()).select_from(PublishLog))


def test_a_time_in_the_spring_gap_is_refused_with_the_nearest_valid_times(api, db, make_clip):
    response = schedule(api, make_clip(), scheduled_at=GAP, timezone="Europe/Paris")

    assert response.status_code == 400
    [error] = response.json["errors"]
    assert error["field"] == "scheduled_at"
    assert "2027-03-28 02:30 does not exist in Europe/Paris" in error["message"]
    assert "the nearest valid times are 01:59 and 03:00" in error["message"]
    assert count_logs(db) == 0


def test_a_time_in_the_autumn_overlap_is_refused_without_fold(api, db, make_clip):
    response = schedule(api, make_clip(), scheduled_at=OVERLAP, timezone="Europe/Paris")

    assert response.status_code == 400
    [error] = response.json["errors"]
    assert error["field"] == "scheduled_at"
    assert "happens twice in Europe/Paris" in error["message"]
    assert "first at +02:00, then at +01:00" in error["message"]
    assert count_logs(db) == 0


@pytest.mark.parametrize("fold, utc", [(0, "2027-10-31T00:30:00Z"), (1, "2027-10-31T01:30:00Z")])
def test_fold_says_which_of_the_two(api, make_clip, fold, utc):
    response = schedule(api, make_clip(), scheduled_at=OVERLAP, timezone="Europe/Paris", fold=fold)
    assert response.status_code == 202, response.json
    assert response.json["scheduled_at"] == utc


def test_an_explicit_offset_says_which_too(api, make_clip):
    response = schedule(api, make_clip(), scheduled_at=OVERLAP + "+01:00", timezone="Europe/Paris")
    assert response.status_code == 202, response.json
    assert response.json["scheduled_at"] == "2027-10-31T01:30:00Z"


def test_an_offset_that_contradicts_the_timezone_is_refused(api, db, make_clip):
    response = schedule(api, make_clip(), scheduled_at="2027-06-01T09:00:00+01:00", timezone="Europe/Paris")

    assert response.status_code == 400
    [error] = response.json["errors"]
    assert error["field"] == "scheduled_at"
    assert "the offset +01:00 is not Europe/Paris's at that time (+02:00)" in error["message"]
    assert count_logs(db) == 0


def test_reschedule_applies_the_same_rules(api, make_clip):
    created = schedule(api, make_clip(), scheduled_at="2027-06-01T09:00:00", timezone="Europe/Paris")
    response = api(f"/publishing/logs/{created.json['id']}/reschedule",
                   {"scheduled_at": GAP, "timezone": "Europe/Paris"})
    assert response.status_code == 400
    assert "does not exist in Europe/Paris" in response.json["detail"]
