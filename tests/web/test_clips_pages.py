"""Clips pages: sign-in and roles, search as you type, keyset pages, create and edit with errors inline."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from dashboard.models import Clip, LedgerEvent, utcnow

from page_support import field_error

HTMX = {"HX-Request": "true"}


@pytest.fixture
def app_config(app_config, request):
    """The conftest settings, changed by `@pytest.mark.parametrize("app_config", [...], indirect=True)`."""
    return {**app_config, **getattr(request, "param", {})}


def csrf_token_from(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def clip_count(db) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Clip))


GET_PAGES = ["/clips", "/clips?q=a", "/clips/new", "/clips/{id}", "/clips/{id}/edit",
             "/clips/accounts-options?platform=instagram"]
POSTS = ["/clips/new", "/clips/{id}/edit", "/clips/{id}/publish"]


@pytest.mark.parametrize("path", GET_PAGES)
def test_pages_need_a_signed_in_user(client, make_clip, path):
    clip = make_clip()
    response = client.get(path.format(id=clip.id))
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("path", POSTS)
def test_posts_need_a_signed_in_user(client, db, make_clip, path):
    clip = make_clip()
    response = client.post(path.format(id=clip.id), data={"title": "x", "media": "m.mp4",
                                                          "platform": "tiktok"})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    assert clip_count(db) == 1


@pytest.mark.parametrize("path, status", [
    ("/clips", 200), ("/clips/{id}", 200),
    ("/clips/new", 403), ("/clips/{id}/edit", 403), ("/clips/accounts-options?platform=tiktok", 403),
])
def test_viewer_reads_but_may_not_change(client, login, make_clip, path, status):
    login("viewer")
    clip = make_clip()
    assert client.get(path.format(id=clip.id)).status_code == status


@pytest.mark.parametrize("path", POSTS)
def test_viewer_may_not_post(client, db, login, make_clip, path):
    login("viewer")
    clip = make_clip(title="Original")
    response = client.post(path.format(id=clip.id), data={
        "title": "Changed", "media": "m.mp4", "platform": "tiktok"}, headers=HTMX)
    assert response.status_code == 403
    db.session.expire_all()
    assert db.session.get(Clip, clip.id).title == "Original"
    assert clip_count(db) == 1


@pytest.mark.parametrize("role", ["editor", "admin"])
def test_editors_and_admins_open_the_forms(client, login, make_clip, role):
    login(role)
    clip = make_clip()
    assert client.get("/clips/new").status_code == 200
    assert client.get(f"/clips/{clip.id}/edit").status_code == 200


def test_viewer_sees_no_editing_controls(client, login, make_clip):
    login("viewer")
    clip = make_clip()
    listing = client.get("/clips").get_data(as_text=True)
    page = client.get(f"/clips/{clip.id}").get_data(as_text=True)
    assert 'id="new-clip"' not in listing
    assert 'id="edit-clip"' not in page
    assert 'id="publish-form"' not in page
    assert 'id="publish-panel"' not in page


def test_list_newest_first_with_links(client, login, make_clip):
    login("viewer")
    old = make_clip(title="Old one", created_at=utcnow() - timedelta(days=1))
    new = make_clip(title="New one")
    html = client.get("/clips").get_data(as_text=True)
    assert html.index("New one") < html.index("Old one")
    assert f'href="/clips/{new.id}"' in html and f'href="/clips/{old.id}"' in html


def test_search_as_you_type_answers_a_fragment(client, login, make_clip):
    login("viewer")
    make_clip(title="Spring launch")
    make_clip(title="Morning tips", description="three quick ones")
    make_clip(title="Bakery", media="https://cdn.example.com/spring-bakery.mp4")

    page = client.get("/clips")
    html = page.get_data(as_text=True)
    assert "<html" in html
    search = re.search(r'<input type="search"[^>]*>', html).group(0)
    assert 'hx-get="/clips"' in search
    assert 'hx-trigger="input changed delay:200ms, search"' in search
    assert 'hx-target="#clip-results"' in search and 'hx-push-url="true"' in search
    assert 'for="q"' in html  # labelled

    fragment = client.get("/clips?q=spring", headers=HTMX)
    body = fragment.get_data(as_text=True)
    assert fragment.status_code == 200
    assert "<html" not in body and 'id="clip-search"' not in body
    assert "Spring launch" in body and "Bakery" in body  # title or media
    assert "Morning tips" not in body
    assert "HX-Request" in fragment.headers["Vary"] and "HX-Request" in page.headers["Vary"]

    by_description = client.get("/clips?q=QUICK", headers=HTMX).get_data(as_text=True)
    assert "Morning tips" in by_description and "Spring launch" not in by_description
    nothing = client.get("/clips?q=zebra", headers=HTMX).get_data(as_text=True)
    assert "No clip matches" in nothing


def test_history_restore_gets_the_whole_page(client, login, make_clip):
    login("viewer")
    make_clip()
    html = client.get("/clips?q=a", headers={**HTMX, "HX-History-Restore-Request": "true"}).get_data(as_text=True)
    assert "<html" in html


def test_keyset_pages_walk_every_clip_once(client, login, make_clip):
    login("viewer")
    start = utcnow()
    clips = [make_clip(title=f"Clip {i:02d}", created_at=start - timedelta(minutes=i)) for i in range(30)]
    seen: list[str] = []
    url = "/clips?q=Clip"
    for _ in range(5):
        html = client.get(url, headers=HTMX).get_data(as_text=True)
        seen += re.findall(r'href="/clips/([0-9a-f-]{36})"', html)
        nxt = re.search(r'id="next-page"[^>]*href="([^"]+)"', html)
        if not nxt:
            break
        url = nxt.group(1).replace("&amp;", "&")
        assert "cursor=" in url and "q=Clip" in url
    assert seen == [str(c.id) for c in clips]  # newest first, none twice, none missing


def test_a_damaged_cursor_is_a_400(client, login):
    login("viewer")
    assert client.get("/clips?cursor=nonsense").status_code == 400


def test_create_a_clip(client, db, login):
    login("editor")
    response = client.post("/clips/new", data={
        "title": "  Product shoot  ", "description": "Behind the scenes",
        "media": "https://cdn.example.com/shoot.mp4", "duration_seconds": "42.5"})
    assert response.status_code == 302
    clip = db.session.scalars(select(Clip)).one()
    assert response.headers["Location"] == f"/clips/{clip.id}"
    assert (clip.title, clip.duration_seconds, clip.media) == (
        "Product shoot", 42.5, "https://cdn.example.com/shoot.mp4")
    assert db.session.scalar(select(LedgerEvent.event_type).where(LedgerEvent.entity_id == clip.id)) == "clip_created"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "created" in page and "Product shoot" in page


@pytest.mark.parametrize("data, field, message", [
    ({"title": "", "media": "a.mp4"}, "title", "This field is required."),
    ({"title": "x" * 201, "media": "a.mp4"}, "title", "200"),
    ({"title": "Ok", "media": ""}, "media", "This field is required."),
    ({"title": "Ok", "media": "a.mp4", "duration_seconds": "-3"}, "duration_seconds", "more than 0"),
    ({"title": "Ok", "media": "a.mp4", "duration_seconds": "0"}, "duration_seconds", "more than 0"),
    ({"title": "Ok", "media": "a.mp4", "duration_seconds": "99999"}, "duration_seconds", "4 hours"),
    ({"title": "Ok", "media": "a.mp4", "duration_seconds": "abc"}, "duration_seconds", "Not a valid float"),
])
def test_create_shows_errors_next_to_the_field(client, db, login, data, field, message):
    login("editor")
    response = client.post("/clips/new", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert message in field_error(html, field)
    assert re.search(rf'<input[^>]*aria-invalid="true"[^>]*id="{field}"'
                     rf'|<input[^>]*id="{field}"[^>]*aria-invalid="true"', html)
    assert clip_count(db) == 0


def test_edit_a_clip(client, db, login, make_clip):
    login("editor")
    clip = make_clip(title="Before", duration_seconds=30.0)
    form = client.get(f"/clips/{clip.id}/edit").get_data(as_text=True)
    assert 'value="Before"' in form
    response = client.post(f"/clips/{clip.id}/edit", data={
        "title": "After", "description": "new words", "media": clip.media, "duration_seconds": ""})
    assert response.status_code == 302
    db.session.expire_all()
    clip = db.session.get(Clip, clip.id)
    assert (clip.title, clip.description, clip.duration_seconds) == ("After", "new words", None)
    assert "clip_updated" in db.session.scalars(
        select(LedgerEvent.event_type).where(LedgerEvent.entity_id == clip.id)).all()


def test_edit_shows_errors_inline_and_changes_nothing(client, db, login, make_clip):
    login("editor")
    clip = make_clip(title="Keep me")
    response = client.post(f"/clips/{clip.id}/edit", data={"title": "", "media": clip.media})
    assert response.status_code == 200
    assert "This field is required." in field_error(response.get_data(as_text=True), "title")
    db.session.expire_all()
    assert db.session.get(Clip, clip.id).title == "Keep me"


def test_unknown_clip_is_a_404(client, login):
    login("editor")
    assert client.get(f"/clips/{uuid.uuid4()}").status_code == 404
    assert client.get(f"/clips/{uuid.uuid4()}/edit").status_code == 404
    assert client.get("/clips/not-a-uuid").status_code == 404


def test_clip_page_links_to_its_ledger_timeline_and_history(client, login, make_clip):
    login("viewer")
    clip = make_clip(title="Timeline", description="About <b>this</b>")
    html = client.get(f"/clips/{clip.id}").get_data(as_text=True)
    assert f'href="/ledger?entity_type=clip&amp;entity_id={clip.id}"' in html
    assert "About &lt;b&gt;this&lt;/b&gt;" in html  # escaped
    assert 'id="clip-history"' in html and "Not published yet." in html


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}], indirect=True)
def test_csrf_is_enforced_on_create_and_edit(client, db, login, make_clip):
    login("editor")
    clip = make_clip(title="Untouched")
    data = {"title": "Forged", "media": "a.mp4"}
    assert client.post("/clips/new", data=data).status_code == 400
    assert client.post(f"/clips/{clip.id}/edit", data=data).status_code == 400
    assert clip_count(db) == 1
    db.session.expire_all()
    assert db.session.get(Clip, clip.id).title == "Untouched"

    token = csrf_token_from(client.get("/clips/new").get_data(as_text=True))
    assert client.post("/clips/new", data={**data, "csrf_token": token}).status_code == 302
    assert clip_count(db) == 2
