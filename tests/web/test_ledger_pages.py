"""Ledger page: filters, keyset pages, the expand fragment, fragments versus pages, index use."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event as sa_event

from dashboard.ledger import EVENT_TYPES, LedgerFilter, list_events
from dashboard.models import LedgerEvent, utcnow
from dashboard.pagination import encode_cursor

from page_support import field_error, walk_pages

HTMX = {"HX-Request": "true"}
UTC = UTC


@pytest.fixture
def make_event(db):
    """make_event(event_type="clip_created", entity_type="clip", entity_id=None, at=None, **metadata) -> id."""

    def make(event_type="clip_created", entity_type="clip", entity_id=None, at=None, **metadata):
        entry = LedgerEvent(event_type=event_type, entity_type=entity_type,
                            entity_id=entity_id or uuid.uuid4(), event_metadata=metadata,
                            created_at=at or utcnow())
        db.session.add(entry)
        db.session.commit()
        return entry.id

    return make


def row_ids(html: str) -> list[str]:
    return re.findall(r'<tr id="event-([0-9a-f-]{36})"', html)


def test_ledger_needs_a_signed_in_user(client, make_event):
    event_id = make_event()
    assert client.get("/ledger").headers["Location"].startswith("/login")
    assert client.get(f"/ledger/{event_id}", headers=HTMX).headers["Location"].startswith("/login")


@pytest.mark.parametrize("role", ["viewer", "editor", "admin"])
def test_every_role_reads_the_ledger(client, login, make_event, role):
    login(role)
    event_id = make_event()
    response = client.get("/ledger")
    assert response.status_code == 200
    assert not re.search(r'class="field-error">[^<]', response.get_data(as_text=True))
    assert client.get(f"/ledger/{event_id}").status_code == 200


def test_newest_first(client, login, make_event):
    login("viewer")
    old = make_event(at=utcnow() - timedelta(days=2))
    new = make_event(at=utcnow() - timedelta(days=1))
    html = client.get("/ledger?entity_type=clip").get_data(as_text=True)
    assert row_ids(html) == [str(new), str(old)]


def test_filter_by_event_type_entity_and_days(client, login, make_event):
    login("viewer")
    clip_id = uuid.uuid4()
    started = make_event("publish_started", entity_id=clip_id, at=datetime(2026, 3, 10, 8, tzinfo=UTC))
    failed = make_event("publish_failed", entity_id=clip_id, at=datetime(2026, 3, 11, 23, 59, tzinfo=UTC))
    other = make_event("publish_failed", at=datetime(2026, 3, 12, 0, 0, tzinfo=UTC))
    account = make_event("account_created", entity_type="account", at=datetime(2026, 3, 9, tzinfo=UTC))

    def ids(query: str) -> list[str]:
        return row_ids(client.get("/ledger?" + query, headers=HTMX).get_data(as_text=True))

    assert ids("event_type=publish_failed") == [str(other), str(failed)]
    assert ids(f"entity_type=clip&entity_id={clip_id}") == [str(failed), str(started)]
    assert ids(f"entity_id={clip_id}") == [str(failed), str(started)]  # the type is looked up
    assert ids(f"entity_id={clip_id.hex}") == [str(failed), str(started)]  # dashes optional
    assert ids(f"entity_id={uuid.uuid4()}") == []
    assert ids(f"event_type=publish_failed&entity_id={clip_id}") == [str(failed)]
    assert ids("from=2026-03-10&to=2026-03-11") == [str(failed), str(started)]
    assert ids("entity_type=account") == [str(account)]
    assert ids(f"entity_type=account&entity_id={clip_id}") == []


def test_the_clip_page_link_shows_the_clip_timeline(client, db, login):
    login("editor")
    first = client.post("/clips/new", data={"title": "First", "media": "a.mp4"}).headers["Location"]
    client.post("/clips/new", data={"title": "Second", "media": "b.mp4"})
    clip_id = first.rsplit("/", 1)[1]
    page = client.get(first).get_data(as_text=True)
    link = re.search(r'<a id="clip-ledger-link" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert link == f"/ledger?entity_type=clip&entity_id={clip_id}"
    html = client.get(link, headers=HTMX).get_data(as_text=True)
    assert len(row_ids(html)) == 1
    assert "clip_created" in html and "First" in html and "Second" not in html
    full = client.get(link).get_data(as_text=True)
    assert f'value="{clip_id}"' in full  # the filter shows what it filters by


def test_event_type_select_lists_the_known_types(client, login):
    login("viewer")
    html = client.get("/ledger").get_data(as_text=True)
    select_html = re.search(r'<select[^>]*id="event_type".*?</select>', html, re.S).group(0)
    assert re.findall(r'<option[^>]*value="([^"]*)"', select_html) == ["", *EVENT_TYPES]
    for field_id in ("event_type", "entity_type", "entity_id", "from", "to"):
        assert f'<label for="{field_id}">' in html


def test_invalid_filters_are_shown_next_to_the_field(client, login, make_event):
    login("viewer")
    make_event()
    html = client.get("/ledger?event_type=clip_created&entity_id=not-an-id").get_data(as_text=True)
    assert "is not an id" in field_error(html, "entity_id")
    assert len(row_ids(html)) == 1  # the bad filter filters nothing
    fragment = client.get("/ledger?from=2026-03-10&to=2026-03-01", headers=HTMX).get_data(as_text=True)
    assert re.search(r'<small id="to-error" class="field-error" hx-swap-oob="true">must be on or after', fragment)
    assert '<small id="entity_id-error" class="field-error" hidden hx-swap-oob="true"></small>' in fragment


def test_fragment_versus_full_page(client, login, make_event):
    login("viewer")
    make_event()
    page = client.get("/ledger")
    fragment = client.get("/ledger", headers=HTMX)
    assert "<html" in page.get_data(as_text=True)
    body = fragment.get_data(as_text=True)
    assert "<html" not in body and 'id="ledger-filters"' not in body and 'id="ledger-table"' in body
    assert "HX-Request" in page.headers["Vary"] and "HX-Request" in fragment.headers["Vary"]
    form = re.search(r'<form id="ledger-filters".*?>', page.get_data(as_text=True), re.S).group(0)
    assert 'hx-get="/ledger"' in form and 'hx-target="#ledger-results"' in form and 'hx-push-url="true"' in form


def test_keyset_pages_walk_every_event_once(client, login, make_event):
    login("viewer")
    start = utcnow()
    made = [make_event("publish_started", at=start - timedelta(seconds=i // 4)) for i in range(130)]
    make_event("clip_created", at=start)
    seen, pages = walk_pages(client, "/ledger?event_type=publish_started", "ledger-next", row_ids,
                             kept="event_type=publish_started")
    assert pages == 3
    expected = sorted(range(130), key=lambda i: (i // 4, -made[i].int))
    assert seen == [str(made[i]) for i in expected]


def test_a_row_expands_to_its_metadata(client, login, make_event):
    login("viewer")
    event_id = make_event("publish_failed", platform="tiktok", error="rate <limit>",
                          publish_log_id=str(uuid.UUID(int=7)))
    html = client.get("/ledger").get_data(as_text=True)
    button = re.search(rf'<button[^>]*id="expand-{event_id}"[^>]*>', html, re.S).group(0)
    assert 'type="button"' in button and f'hx-get="/ledger/{event_id}"' in button
    assert f'hx-target="#event-{event_id}"' in button and 'hx-swap="afterend"' in button
    assert 'aria-expanded="false"' in button and f'aria-controls="event-{event_id}-detail"' in button

    response = client.get(f"/ledger/{event_id}", headers=HTMX)
    detail = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in detail
    assert detail.strip().startswith(f'<tr id="event-{event_id}-detail"')
    pre = re.search(r'<pre class="metadata"[^>]*>(.*?)</pre>', detail, re.S).group(1)
    assert "&lt;limit&gt;" in pre and "<limit>" not in pre  # escaped
    text = pre.replace("&#34;", '"').replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
    assert json.loads(text) == {"platform": "tiktok", "error": "rate <limit>",
                                "publish_log_id": str(uuid.UUID(int=7))}
    assert '\n  "error"' in text  # pretty, indented
    assert "HX-Request" in response.headers["Vary"]


def test_an_event_without_htmx_is_a_page(client, login, make_event):
    login("viewer")
    event_id = make_event(title="Launch")
    html = client.get(f"/ledger/{event_id}").get_data(as_text=True)
    assert "<html" in html and '<pre class="metadata">' in html and "Launch" in html
    assert client.get(f"/ledger/{uuid.uuid4()}", headers=HTMX).status_code == 404
    assert client.get("/ledger/nope").status_code == 404


def test_a_damaged_cursor_is_a_400(client, login):
    login("viewer")
    assert client.get("/ledger?cursor=%%%").status_code == 400


def test_filtered_queries_use_an_index(db):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's; PostgreSQL plans by its statistics")
    day = datetime(2026, 3, 1, tzinfo=UTC)
    some_id = uuid.uuid4()
    filters = [
        LedgerFilter(),
        LedgerFilter(event_type="publish_failed"),
        LedgerFilter(entity_type="clip", entity_id=some_id),
        LedgerFilter(since=day, until=day + timedelta(days=1)),
        LedgerFilter(event_type="publish_failed", since=day, until=day + timedelta(days=1)),
        LedgerFilter(event_type="publish_failed", entity_type="clip", entity_id=some_id),
    ]
    statements = []

    def grab(_conn, _cursor, statement, parameters, _context, _many):
        if "FROM ledger_events" in statement and "ORDER BY" in statement:
            statements.append((statement, parameters))

    sa_event.listen(db.engine, "before_cursor_execute", grab)
    try:
        for f in filters:
            list_events(db.session, f, None, 50)
            list_events(db.session, f, encode_cursor(day, uuid.UUID(int=0)), 50)
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", grab)
    assert len(statements) == 2 * len(filters)
    connection = db.session.connection()
    for statement, parameters in statements:
        plan = " | ".join(row[-1] for row in connection.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + statement, parameters))
        assert "USING INDEX ix_ledger_events_" in plan, plan
        if "created_at <=" in statement:  # a cursor: the index seeks to it
            assert "created_at<?" in plan, plan


def test_every_event_type_the_code_records_is_in_the_filter():
    """A new record_event("x", ...) call must add "x" to ledger.EVENT_TYPES, or it can't be filtered."""
    from pathlib import Path

    import dashboard

    recorded = set()
    for path in Path(dashboard.__file__).parent.rglob("*.py"):
        # the event type argument: "x", or "x" if ... else "y"
        for argument in re.findall(r'record_event\(\s*[\w.]+,\s*("[a-z_]+"(?: if [^,]+ else "[a-z_]+")?)',
                                   path.read_text()):
            recorded |= set(re.findall(r'"([a-z_]+)"', argument))
    recorded |= {"publish_provider_ready", "publish_provider_fallback"}  # chosen in service.py
    assert {"user_deactivated", "account_credentials_set"} <= recorded  # the parsing works
    assert recorded <= set(EVENT_TYPES), sorted(recorded - set(EVENT_TYPES))


def test_event_types_in_words_and_entities_by_name_with_the_raw_values_on_hover(
        client, db, login, make_event, make_clip, make_account):
    login("viewer")
    clip = make_clip(title="Spring launch")
    account = make_account("tiktok", handle="brand")
    make_event("publish_retry_scheduled", "clip", clip.id)
    make_event("account_credentials_set", "account", account.id)
    make_event("api_token_created", "user", uuid.uuid4())  # a user since deleted
    html = client.get("/ledger").get_data(as_text=True)
    assert '<span class="event-type" title="publish_retry_scheduled">Publish retry scheduled</span>' in html
    assert '<span class="event-type" title="api_token_created">API token created</span>' in html
    assert (f'<span class="muted">Clip</span> <a class="entity" href="/clips/{clip.id}" '
            f'title="clip {clip.id}">Spring launch</a>') in html
    assert (f'<span class="muted">Account</span> <a class="entity" href="/accounts/#account-{account.id}" '
            f'title="account {account.id}">@brand (TikTok)</a>') in html
    assert "<code>publish_retry_scheduled</code>" not in html
    select_html = re.search(r'<select[^>]*id="event_type".*?</select>', html, re.S).group(0)
    assert '<option value="publish_retry_scheduled">Publish retry scheduled</option>' in select_html


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_only_admins_see_users_emails(client, db, login, make_user, role):
    from dashboard import users as user_service

    me = login(role)
    other = user_service.create_user(db, "someone.else@example.com", "a-long-password-1", "editor")
    html = client.get("/ledger").get_data(as_text=True)
    row = re.search(r'<tr id="event-([0-9a-f-]{36})" data-event-type="user_created">.*?</tr>', html, re.S)
    assert "someone.else@example.com" not in html
    assert f'<span class="entity" title="user {other.id}">A user (Editor)</span>' in row.group(0)
    detail = client.get(f"/ledger/{row.group(1)}", headers=HTMX).get_data(as_text=True)
    assert "someone.else@example.com" not in detail and "(shown to admins only)" in detail
    page = client.get(f"/ledger/{row.group(1)}").get_data(as_text=True)
    assert "someone.else@example.com" not in page
    user_service.set_timezone(db, me.id, "Europe/Paris")
    assert "You (" in client.get("/ledger").get_data(as_text=True)


def test_admins_see_users_emails(client, db, login):
    from dashboard import users as user_service

    login("admin")
    user_service.create_user(db, "someone.else@example.com", "a-long-password-1", "editor")
    html = client.get("/ledger").get_data(as_text=True)
    assert html.count("someone.else@example.com") == 2  # the entity's name and the summary's email
