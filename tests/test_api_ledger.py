"""GET /api/ledger: newest first, filters, keyset pagination, and the append-only rule."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from dashboard.ledger import events_for, record_event, record_events
from dashboard.models import AppendOnlyError, LedgerEvent, utcnow

from api_support import assert_problem

EVENT_FIELDS = {"id", "event_type", "entity_type", "entity_id", "metadata", "created_at"}


@pytest.fixture
def viewer(api_headers):
    return api_headers("viewer")


def all_events_newest_first(db) -> list[str]:
    db.session.expire_all()
    rows = db.session.scalars(select(LedgerEvent).order_by(LedgerEvent.created_at.desc(),
                                                           LedgerEvent.id.desc()))
    return [str(row.id) for row in rows]


def walk(client, headers, query: str, limit: int) -> tuple[list[dict], int]:
    """Every item of a listing, following next_cursor; also the number of pages."""
    items, pages = [], 0
    url = f"/api/ledger?limit={limit}{'&' + query if query else ''}"
    while True:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.json
        page = response.json
        assert len(page["items"]) <= limit
        items += page["items"]
        pages += 1
        if page["next_cursor"] is None:
            return items, pages
        url = f"/api/ledger?limit={limit}&cursor={page['next_cursor']}{'&' + query if query else ''}"


def test_ledger_lists_newest_first_with_its_fields(client, db, viewer, make_clip):
    clip_id = make_clip().id
    record_event(db.session, "clip_reviewed", "clip", clip_id, {"by": "qa", "at": utcnow()})
    db.session.commit()

    body = client.get("/api/ledger", headers=viewer).json

    assert set(body) == {"items", "next_cursor"}
    assert body["next_cursor"] is None
    assert [item["id"] for item in body["items"]] == all_events_newest_first(db)
    newest = body["items"][0]
    assert set(newest) == EVENT_FIELDS
    assert (newest["event_type"], newest["entity_type"], newest["entity_id"]) == (
        "clip_reviewed", "clip", str(clip_id))
    assert newest["metadata"]["by"] == "qa" and newest["metadata"]["at"].endswith("Z")
    assert all(item["created_at"].endswith("Z") for item in body["items"])
    times = [item["created_at"] for item in body["items"]]
    assert times == sorted(times, reverse=True)


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 50])
def test_cursor_walks_every_event_once(client, db, viewer, make_clip, limit):
    for n in range(9):
        record_event(db.session, "clip_created", "clip", make_clip(title=f"c{n}").id, {"n": n})
    db.session.commit()
    expected = all_events_newest_first(db)

    items, pages = walk(client, viewer, "", limit)

    assert [item["id"] for item in items] == expected
    assert pages == max(1, -(-len(expected) // limit))


def test_cursor_breaks_ties_on_identical_times(client, db, viewer):
    """Events sharing one timestamp are neither skipped nor repeated across page boundaries."""
    moment = utcnow() - timedelta(days=1)
    for n in range(7):
        db.session.add(LedgerEvent(event_type="tie", entity_type="system", entity_id=uuid.uuid4(),
                                   event_metadata={"n": n}, created_at=moment))
    db.session.commit()

    items, _ = walk(client, viewer, "event_type=tie", 2)

    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)) == 7
    assert ids == sorted(ids, key=lambda i: uuid.UUID(i).hex, reverse=True)


def test_events_added_while_paging_do_not_shift_pages(client, db, viewer, make_clip):
    for n in range(6):
        record_event(db.session, "step", "system", uuid.uuid4(), {"n": n})
    db.session.commit()
    expected = all_events_newest_first(db)

    first = client.get("/api/ledger?limit=3", headers=viewer).json
    record_event(db.session, "step", "system", uuid.uuid4(), {"n": "late"})
    db.session.commit()
    rest, _ = walk_from(client, viewer, first["next_cursor"], 3)

    assert [item["id"] for item in first["items"] + rest] == expected


def walk_from(client, headers, cursor, limit):
    items, pages = [], 0
    while cursor:
        page = client.get(f"/api/ledger?limit={limit}&cursor={cursor}", headers=headers).json
        items += page["items"]
        pages += 1
        cursor = page["next_cursor"]
    return items, pages


def test_filters_by_event_type_and_entity(client, db, viewer, make_clip):
    first, second = make_clip().id, make_clip().id
    for clip_id in (first, second, first):
        record_event(db.session, "clip_updated", "clip", clip_id, {})
        record_event(db.session, "clip_reviewed", "clip", clip_id, {})
    db.session.commit()

    by_type, _ = walk(client, viewer, "event_type=clip_updated", 2)
    assert len(by_type) == 3 and {item["event_type"] for item in by_type} == {"clip_updated"}

    by_entity, _ = walk(client, viewer, f"entity_id={first}", 3)
    assert len(by_entity) == 4 and {item["entity_id"] for item in by_entity} == {str(first)}

    both, _ = walk(client, viewer, f"event_type=clip_reviewed&entity_id={second}", 1)
    assert [(item["event_type"], item["entity_id"]) for item in both] == [("clip_reviewed", str(second))]

    by_entity_type = client.get("/api/ledger?entity_type=user", headers=viewer).json["items"]
    assert by_entity_type and {item["entity_type"] for item in by_entity_type} == {"user"}

    none = client.get(f"/api/ledger?entity_id={uuid.uuid4()}", headers=viewer).json
    assert none == {"items": [], "next_cursor": None}


def test_time_filters(client, db, viewer):
    now = utcnow()
    for hours_ago in (1, 3, 5):
        db.session.add(LedgerEvent(event_type="timed", entity_type="system", entity_id=uuid.uuid4(),
                                   event_metadata={"h": hours_ago},
                                   created_at=now - timedelta(hours=hours_ago)))
    db.session.commit()
    since = (now - timedelta(hours=4)).isoformat().replace("+00:00", "Z")
    until = (now - timedelta(hours=2)).isoformat().replace("+00:00", "Z")

    items = client.get(f"/api/ledger?event_type=timed&since={since}&until={until}",
                       headers=viewer).json["items"]
    assert [item["metadata"]["h"] for item in items] == [3]

    naive = (now - timedelta(hours=4)).replace(tzinfo=None).isoformat()
    items = client.get(f"/api/ledger?event_type=timed&since={naive}", headers=viewer).json["items"]
    assert [item["metadata"]["h"] for item in items] == [1, 3]


def _cursor(payload) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    "garbage",
    "%%%",
    _cursor(["not a time", str(uuid.uuid4())]),
    _cursor(["2026-01-01T00:00:00+00:00", "not-a-uuid"]),
    _cursor(["2026-01-01T00:00:00+00:00"]),
    _cursor({"created_at": "2026-01-01T00:00:00+00:00"}),
    _cursor(["2026-01-01T00:00:00", str(uuid.uuid4())]),  # no offset: not one we issue
    _cursor([20260101, 1]),
])
def test_bad_cursor_is_400(client, viewer, cursor):
    assert_problem(client.get(f"/api/ledger?cursor={cursor}", headers=viewer), 400, "cursor")


@pytest.mark.parametrize(("query", "field"), [
    ("entity_id=clip-1", "entity_id"),
    ("limit=0", "limit"),
    ("limit=1000", "limit"),
    ("since=yesterday", "since"),
    ("sort=asc", "sort"),
])
def test_bad_query_is_400(client, viewer, query, field):
    assert_problem(client.get(f"/api/ledger?{query}", headers=viewer), 400, field)


def test_ledger_rows_cannot_be_changed_or_deleted(db, make_clip):
    event_id = record_event(db.session, "clip_created", "clip", make_clip().id, {})
    db.session.commit()
    event = db.session.get(LedgerEvent, event_id)

    event.event_type = "clip_forged"
    with pytest.raises(AppendOnlyError):
        db.session.commit()
    db.session.rollback()

    db.session.delete(db.session.get(LedgerEvent, event.id))
    with pytest.raises(AppendOnlyError):
        db.session.commit()
    db.session.rollback()
    assert db.session.get(LedgerEvent, event.id).event_type == "clip_created"


def test_secret_looking_metadata_is_refused(db, make_clip):
    clip = make_clip()
    with pytest.raises(ValueError):
        record_event(db.session, "oops", "clip", clip.id, {"access_token": "x"})
    with pytest.raises(ValueError):
        record_events(db.session, "clip", clip.id, [("clip_updated", {}), ("oops", {"password": "x"})])
    db.session.commit()
    assert events_for(db.session, "clip", clip.id) == []  # nothing of the refused batch


def test_events_recorded_together_keep_their_order(db, make_clip):
    """Several events of one step written in one statement: each its own row and id, in the
    order given, with strictly increasing times after the events before them."""
    clip = make_clip()
    first = record_event(db.session, "clip_updated", "clip", clip.id, {"n": 0})
    ids = record_events(db.session, "clip", clip.id, [
        ("clip_updated", {"n": 1, "at": utcnow()}), ("clip_cover_set", None), ("clip_updated", {"n": 3}),
    ])
    db.session.commit()
    events = events_for(db.session, "clip", clip.id)
    assert [e.id for e in events] == [first, *ids]
    assert [e.event_type for e in events] == ["clip_updated", "clip_updated", "clip_cover_set", "clip_updated"]
    assert [e.event_metadata.get("n") for e in events] == [0, 1, None, 3]
    assert events[1].event_metadata["at"].endswith("Z")
    times = [e.created_at for e in events]
    assert times == sorted(set(times))


@pytest.mark.parametrize("role, sees_emails", [("viewer", False), ("editor", False), ("admin", True)])
def test_only_admins_read_users_emails_in_the_ledger(client, db, api_headers, make_user, role, sees_emails):
    headers = api_headers(role)
    other = make_user("editor", email="someone.else@example.com")  # the service records user_created
    items = client.get("/api/ledger?event_type=user_created", headers=headers).json["items"]
    mine = [item for item in items if item["entity_id"] == str(other.id)]
    assert [item["metadata"]["role"] for item in mine] == ["editor"]
    assert (mine[0]["metadata"]["email"] == "someone.else@example.com") is sees_emails


def test_event_times_follow_the_clock_after_it_was_set_back(db, make_clip):
    """Events of one transaction get strictly increasing times, but an event recorded while the
    clock was far ahead (a clock step, a test travelling in time) does not push every later
    event of the process into the future, after the events other processes record."""
    import time_machine

    clip = make_clip()
    with time_machine.travel(utcnow() + timedelta(days=40), tick=False):
        record_event(db.session, "clip_updated", "clip", clip.id, {})
    back = utcnow()
    later_ids = [record_event(db.session, "clip_updated", "clip", clip.id, {}) for _ in range(3)]
    db.session.commit()
    later = [db.session.get(LedgerEvent, event_id).created_at for event_id in later_ids]
    assert later == sorted(set(later))  # strictly increasing, no tie
    assert later[0] - back < timedelta(seconds=1)  # the clock's time, not 40 days ahead
