"""Clips and accounts through the JSON API: CRUD, the satellite rules, conflicts and bad input."""

from __future__ import annotations

import uuid

import pytest

from dashboard.ledger import events_for
from dashboard.models import Clip, SocialAccount

from api_support import assert_problem, clip_events, count, publish, written_rows

CLIP_FIELDS = {"id", "title", "description", "media", "duration_seconds", "platforms", "created_at",
               "updated_at"}
ACCOUNT_FIELDS = {"id", "platform", "handle", "display_name", "parent_account_id", "config", "active",
                  "credentials", "credential_keys_set", "needs_credentials", "needs_credentials_reason",
                  "connection", "created_at", "updated_at"}


@pytest.fixture
def editor(api_headers):
    return api_headers("editor")


@pytest.fixture
def admin(api_headers):
    return api_headers("admin")


def new_clip(client, headers, **fields):
    body = {"title": "Launch teaser", "media": "https://cdn.example.com/teaser.mp4", **fields}
    response = client.post("/api/clips", headers=headers, json=body)
    assert response.status_code == 201, response.json
    return response.json


def new_account(client, headers, **fields):
    body = {"platform": "instagram", "handle": f"acme{uuid.uuid4().hex[:6]}", **fields}
    response = client.post("/api/accounts", headers=headers, json=body)
    assert response.status_code == 201, response.json
    return response.json


def everything_written(db):
    return written_rows(db), count(db, Clip), count(db, SocialAccount)


# Clips ------------------------------------------------------------------------------------------

def test_create_clip_answers_201_with_location(client, db, editor):
    response = client.post("/api/clips", headers=editor, json={
        "title": "  Behind the scenes ", "description": "Spring shoot",
        "media": "https://cdn.example.com/bts.mp4", "duration_seconds": 42.5})

    assert response.status_code == 201
    body = response.json
    assert set(body) == CLIP_FIELDS
    assert (body["title"], body["description"], body["media"]["url"], body["duration_seconds"]) == (
        "Behind the scenes", "Spring shoot", "https://cdn.example.com/bts.mp4", 42.5)
    # A URL string is not probed: only its duration rules can be judged.
    assert body["media"]["source"] == "url" and body["media"]["thumbnail_url"] is None
    assert body["platforms"]["instagram"] == {"ok": True, "errors": []}
    assert body["platforms"]["youtube"]["ok"] is True
    assert body["created_at"].endswith("Z") and body["updated_at"].endswith("Z")
    assert response.headers["Location"].endswith(f"/api/clips/{body['id']}")
    assert client.get(response.headers["Location"], headers=editor).json == body
    assert clip_events(db, body["id"]) == [("clip_created", {"title": "Behind the scenes"})]


@pytest.mark.parametrize(("body", "field"), [
    ({"media": "https://cdn.example.com/a.mp4"}, "title"),
    ({"title": "   ", "media": "https://cdn.example.com/a.mp4"}, "title"),
    ({"title": "x" * 201, "media": "https://cdn.example.com/a.mp4"}, "title"),
    ({"title": "T"}, "media"),
    ({"title": "T", "media": "m.mp4", "duration_seconds": -1}, "duration_seconds"),
    ({"title": "T", "media": "m.mp4", "duration_seconds": "long"}, "duration_seconds"),
    ({"title": "T", "media": "m.mp4", "owner": "me"}, "owner"),
])
def test_invalid_clip_is_400_naming_the_field(client, db, editor, body, field):
    before = everything_written(db)
    assert_problem(client.post("/api/clips", headers=editor, json=body), 400, field)
    assert everything_written(db) == before


def test_clip_body_must_be_a_json_object(client, db, editor):
    before = everything_written(db)
    assert_problem(client.post("/api/clips", headers=editor, json=["T", "m.mp4"]), 400)
    assert_problem(client.post("/api/clips", headers=editor, data="title=T",
                               content_type="application/x-www-form-urlencoded"), 400, "body")
    assert everything_written(db) == before


def test_patch_clip_changes_only_the_given_fields(client, db, editor):
    clip = new_clip(client, editor, description="Old", duration_seconds=30)
    response = client.patch(f"/api/clips/{clip['id']}", headers=editor,
                            json={"title": "Renamed", "duration_seconds": None})

    assert response.status_code == 200
    body = response.json
    assert (body["title"], body["description"], body["duration_seconds"]) == ("Renamed", "Old", None)
    assert body["updated_at"] >= clip["updated_at"]
    assert client.get(f"/api/clips/{clip['id']}", headers=editor).json == body
    assert clip_events(db, clip["id"])[-1] == ("clip_updated", {"fields": ["duration_seconds", "title"]})


def test_patch_clip_refuses_bad_input(client, db, editor):
    clip = new_clip(client, editor)
    before = everything_written(db)
    assert_problem(client.patch(f"/api/clips/{clip['id']}", headers=editor, json={"id": str(uuid.uuid4())}),
                   400, "id")
    assert_problem(client.patch(f"/api/clips/{clip['id']}", headers=editor, json={"title": ""}), 400, "title")
    assert_problem(client.patch("/api/clips/123", headers=editor, json={"title": "x"}), 400, "clip_id")
    assert_problem(client.patch(f"/api/clips/{uuid.uuid4()}", headers=editor, json={"title": "x"}), 404)
    assert everything_written(db) == before
    assert client.get(f"/api/clips/{clip['id']}", headers=editor).json == clip


def test_delete_clip(client, db, editor):
    clip = new_clip(client, editor)
    response = client.delete(f"/api/clips/{clip['id']}", headers=editor)
    assert response.status_code == 204
    assert response.get_data() == b""
    assert_problem(client.get(f"/api/clips/{clip['id']}", headers=editor), 404)
    assert [event for event, _ in clip_events(db, clip["id"])] == ["clip_created", "clip_deleted"]
    assert_problem(client.delete(f"/api/clips/{clip['id']}", headers=editor), 404)


def test_delete_clip_with_publish_history_is_409_and_keeps_it(client, db, editor):
    clip = new_clip(client, editor)
    assert publish(client, editor, clip_id=clip["id"], platform="youtube").status_code == 200
    before = everything_written(db)

    assert_problem(client.delete(f"/api/clips/{clip['id']}", headers=editor), 409)

    assert everything_written(db) == before
    assert client.get(f"/api/clips/{clip['id']}", headers=editor).status_code == 200
    assert len(client.get(f"/publishing/logs/{clip['id']}", headers=editor).json) == 1


def test_get_clip_errors(client, editor):
    assert_problem(client.get("/api/clips/not-a-uuid", headers=editor), 400, "clip_id")
    assert_problem(client.get(f"/api/clips/{uuid.uuid4()}", headers=editor), 404)
    assert_problem(client.delete("/api/clips/not-a-uuid", headers=editor), 400, "clip_id")


def test_list_clips_newest_first_with_search_and_cursor(client, editor):
    made = [new_clip(client, editor, title=f"Clip {n}", description="food" if n % 2 else "")
            for n in range(5)]
    newest_first = [clip["id"] for clip in reversed(made)]

    page = client.get("/api/clips?limit=2", headers=editor).json
    seen = [clip["id"] for clip in page["items"]]
    while page["next_cursor"]:
        page = client.get(f"/api/clips?limit=2&cursor={page['next_cursor']}", headers=editor).json
        seen += [clip["id"] for clip in page["items"]]
    assert seen == newest_first

    found = client.get("/api/clips?q=FOOD", headers=editor).json
    assert [clip["title"] for clip in found["items"]] == ["Clip 3", "Clip 1"]
    assert found["next_cursor"] is None


def search_titles(client, headers, q):
    response = client.get("/api/clips", query_string={"q": q}, headers=headers)
    assert response.status_code == 200, response.json
    return sorted(clip["title"] for clip in response.json["items"])


def test_clip_search_is_a_case_insensitive_substring_of_any_searched_field(client, editor):
    new_clip(client, editor, title="Launch teaser", description="Spring collection, 50% off_now")
    new_clip(client, editor, title="Behind the scenes", media="https://cdn.example.com/BTS-Take_2.mp4")
    new_clip(client, editor, title="Say \"cheese\"", description="")

    assert search_titles(client, editor, "AUNCH TEA") == ["Launch teaser"]  # inside words, any case
    assert search_titles(client, editor, "collection") == ["Launch teaser"]  # description
    assert search_titles(client, editor, "bts-take") == ["Behind the scenes"]  # media
    assert search_titles(client, editor, "  scenes ") == ["Behind the scenes"]  # trimmed
    assert search_titles(client, editor, '"cheese"') == ['Say "cheese"']
    # Short queries (an index of 1- and 2-character substrings) are substrings alike.
    assert search_titles(client, editor, "BT") == ["Behind the scenes"]
    assert search_titles(client, editor, "e") == ["Behind the scenes", "Launch teaser", 'Say "cheese"']
    assert search_titles(client, editor, "N,") == ["Launch teaser"]  # any character
    assert search_titles(client, editor, '"') == ['Say "cheese"']
    assert search_titles(client, editor, "zq") == []
    assert search_titles(client, editor, "rs") == []  # "teaser" + "Spring": never across fields
    # % and _ are characters, not wildcards.
    assert search_titles(client, editor, "50%") == ["Launch teaser"]
    assert search_titles(client, editor, "5%") == []
    assert search_titles(client, editor, "off_now") == ["Launch teaser"]
    assert search_titles(client, editor, "launch_teaser") == []
    assert search_titles(client, editor, "_") == ["Behind the scenes", "Launch teaser"]
    # A match never spans two fields.
    assert search_titles(client, editor, "teaser Spring") == []


def test_clip_search_follows_changes_and_deletions(client, editor):
    clip = new_clip(client, editor, title="Old name", description="first words")
    other = new_clip(client, editor, title="Other name")

    assert client.patch(f"/api/clips/{clip['id']}", headers=editor,
                        json={"title": "New title", "description": "second words"}).status_code == 200
    assert search_titles(client, editor, "old name") == []
    assert search_titles(client, editor, "first") == []
    assert search_titles(client, editor, "new title") == ["New title"]
    assert search_titles(client, editor, "second") == ["New title"]
    assert search_titles(client, editor, "name") == ["Other name"]
    assert search_titles(client, editor, "ol") == []  # short queries follow too
    assert search_titles(client, editor, "tL") == ["New title"]
    assert search_titles(client, editor, "ec") == ["New title"]

    assert client.delete(f"/api/clips/{other['id']}", headers=editor).status_code == 204
    assert search_titles(client, editor, "name") == []
    assert search_titles(client, editor, "words") == ["New title"]
    assert search_titles(client, editor, "Ot") == []
    assert search_titles(client, editor, "N") == ["New title"]


@pytest.mark.parametrize(("query", "field"), [
    ("limit=0", "limit"), ("limit=201", "limit"), ("limit=ten", "limit"),
    ("cursor=garbage", "cursor"), ("colour=red", "colour"),
])
def test_list_clips_bad_query_is_400(client, editor, query, field):
    assert_problem(client.get(f"/api/clips?{query}", headers=editor), 400, field)


# Accounts ---------------------------------------------------------------------------------------

def test_create_main_account(client, db, admin):
    response = client.post("/api/accounts", headers=admin, json={
        "platform": "tiktok", "handle": "@acme", "display_name": "Acme",
        "config": {"privacy_level": "SELF_ONLY"}})

    assert response.status_code == 201, response.json
    body = response.json
    assert set(body) == ACCOUNT_FIELDS
    assert (body["platform"], body["handle"], body["display_name"], body["parent_account_id"]) == (
        "tiktok", "acme", "Acme", None)
    assert (body["config"], body["active"]) == ({"privacy_level": "SELF_ONLY"}, True)
    assert (body["credentials"], body["credential_keys_set"]) == ("none", [])
    assert body["created_at"].endswith("Z")
    assert response.headers["Location"].endswith(f"/api/accounts/{body['id']}")
    assert client.get(response.headers["Location"], headers=admin).json == body
    events = events_for(db.session, "account", uuid.UUID(body["id"]))
    assert [(e.event_type, e.event_metadata) for e in events] == [
        ("account_created", {"platform": "tiktok", "handle": "acme", "parent_account_id": None})]


def test_satellite_of_a_main_of_the_same_platform(client, admin):
    main = new_account(client, admin, platform="youtube", handle="AcmeChannel")
    satellite = new_account(client, admin, platform="youtube", handle="AcmeShorts",
                            parent_account_id=main["id"])
    assert satellite["parent_account_id"] == main["id"]
    listed = client.get("/api/accounts", headers=admin).json["items"]
    assert {(a["handle"], a["parent_account_id"]) for a in listed} == {
        ("AcmeChannel", None), ("AcmeShorts", main["id"])}


def test_satellite_rules(client, db, admin):
    instagram = new_account(client, admin, platform="instagram", handle="acme")
    satellite = new_account(client, admin, platform="instagram", handle="acme.food",
                            parent_account_id=instagram["id"])
    before = everything_written(db)

    mismatch = client.post("/api/accounts", headers=admin, json={
        "platform": "tiktok", "handle": "acme.tt", "parent_account_id": instagram["id"]})
    assert_problem(mismatch, 400, "parent_account_id")
    nested = client.post("/api/accounts", headers=admin, json={
        "platform": "instagram", "handle": "acme.food.fr", "parent_account_id": satellite["id"]})
    assert_problem(nested, 400, "parent_account_id")
    unknown = client.post("/api/accounts", headers=admin, json={
        "platform": "instagram", "handle": "acme.x", "parent_account_id": str(uuid.uuid4())})
    assert_problem(unknown, 400, "parent_account_id")
    main_to_satellite = client.patch(f"/api/accounts/{instagram['id']}", headers=admin,
                                     json={"parent_account_id": satellite["id"]})
    assert_problem(main_to_satellite, 400, "parent_account_id")
    own_main = client.patch(f"/api/accounts/{satellite['id']}", headers=admin,
                            json={"parent_account_id": satellite["id"]})
    assert_problem(own_main, 400, "parent_account_id")

    assert everything_written(db) == before


def test_duplicate_handle_is_409(client, db, admin):
    new_account(client, admin, platform="instagram", handle="acme")
    before = everything_written(db)
    for handle in ("acme", "@acme"):
        duplicate = client.post("/api/accounts", headers=admin, json={"platform": "instagram", "handle": handle})
        assert_problem(duplicate, 409)
    assert everything_written(db) == before
    assert new_account(client, admin, platform="tiktok", handle="acme")["handle"] == "acme"


def test_patch_account(client, db, admin):
    main = new_account(client, admin, platform="instagram", handle="acme")
    other = new_account(client, admin, platform="instagram", handle="acme.sports")

    response = client.patch(f"/api/accounts/{other['id']}", headers=admin, json={
        "display_name": "Acme Sports", "active": False, "parent_account_id": main["id"]})
    assert response.status_code == 200, response.json
    assert (response.json["display_name"], response.json["active"], response.json["parent_account_id"]) == (
        "Acme Sports", False, main["id"])

    before = everything_written(db)
    assert_problem(client.patch(f"/api/accounts/{other['id']}", headers=admin, json={"handle": "acme"}), 409)
    assert_problem(client.patch(f"/api/accounts/{other['id']}", headers=admin,
                                json={"platform": "tiktok"}), 400, "platform")
    assert_problem(client.patch(f"/api/accounts/{uuid.uuid4()}", headers=admin, json={"active": True}), 404)
    assert_problem(client.patch("/api/accounts/acme", headers=admin, json={"active": True}), 400, "account_id")
    assert everything_written(db) == before


@pytest.mark.parametrize(("body", "field"), [
    ({"platform": "myspace", "handle": "acme"}, "platform"),
    ({"handle": "acme"}, "platform"),
    ({"platform": "instagram"}, "handle"),
    ({"platform": "instagram", "handle": "two words"}, "handle"),
    ({"platform": "instagram", "handle": "acme", "parent_account_id": "main"}, "parent_account_id"),
    ({"platform": "instagram", "handle": "acme", "credentials": {"access_token": "x"}}, "credentials"),
])
def test_invalid_account_is_400_naming_the_field(client, db, admin, body, field):
    before = everything_written(db)
    assert_problem(client.post("/api/accounts", headers=admin, json=body), 400, field)
    assert everything_written(db) == before


def test_account_errors(client, admin):
    assert_problem(client.get("/api/accounts/not-a-uuid", headers=admin), 400, "account_id")
    assert_problem(client.get(f"/api/accounts/{uuid.uuid4()}", headers=admin), 404)


def test_handle_taken_between_check_and_commit_is_409(client, db, admin, monkeypatch):
    """Two admins adding the same handle at once: the database's unique index decides."""
    from dashboard import accounts

    first = new_account(client, admin, platform="tiktok", handle="acme")
    other = new_account(client, admin, platform="tiktok", handle="acme.clips")
    monkeypatch.setattr(accounts, "_check_handle_free", lambda *args, **kwargs: None)
    before = everything_written(db)

    assert_problem(client.post("/api/accounts", headers=admin,
                               json={"platform": "tiktok", "handle": "acme"}), 409)
    assert_problem(client.patch(f"/api/accounts/{other['id']}", headers=admin,
                                json={"handle": "acme"}), 409)

    assert everything_written(db) == before
    assert client.get(f"/api/accounts/{first['id']}", headers=admin).json["handle"] == "acme"


@pytest.mark.parametrize("key", ["access_token", "client_secret", "instagram_account_id",
                                 "refresh_token", "api_password", "Webhook_Secret"])
def test_credentials_are_refused_in_the_plain_config(client, db, admin, key):
    account = new_account(client, admin, platform="instagram", handle="acme")
    before = everything_written(db)
    config = {"privacy_level": "PUBLIC", key: "IGQVJ-pasted-by-mistake"}

    created = client.post("/api/accounts", headers=admin,
                          json={"platform": "tiktok", "handle": "acme", "config": config})
    changed = client.patch(f"/api/accounts/{account['id']}", headers=admin, json={"config": config})

    for response in (created, changed):
        assert_problem(response, 400, f"config.{key}")
        assert "IGQVJ-pasted-by-mistake" not in response.get_data(as_text=True)
    assert everything_written(db) == before
    plain = client.patch(f"/api/accounts/{account['id']}", headers=admin,
                         json={"config": {"privacy_level": "PUBLIC"}})
    assert plain.status_code == 200 and plain.json["config"] == {"privacy_level": "PUBLIC"}
