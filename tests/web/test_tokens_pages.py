"""API tokens page: a user's own tokens, created (shown once) and revoked."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import func, select

from dashboard.models import ApiToken
from dashboard.users import create_token, user_for_token

from conftest import ROLES

HTMX = {"HX-Request": "true"}


def csrf_token_from(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def token_count(db) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(ApiToken))


@pytest.mark.parametrize("role", ROLES)
def test_every_role_manages_its_own_tokens(client, db, login, role):
    login(role)
    assert client.get("/tokens/").status_code == 200
    response = client.post("/tokens/", data={"name": "ci"})
    assert response.status_code == 201
    assert token_count(db) == 1


def test_lists_only_my_tokens(client, db, login, make_user):
    me = login("viewer")
    create_token(db, me.id, "mine")
    create_token(db, make_user("admin").id, "someone-elses")
    html = client.get("/tokens/").get_data(as_text=True)
    assert ">mine<" in html and "someone-elses" not in html


def test_empty_list_message(client, login):
    login("viewer")
    assert 'id="no-tokens"' in client.get("/tokens/").get_data(as_text=True)


def test_create_shows_the_token_once(client, db, login):
    me = login("editor")
    response = client.post("/tokens/", data={"name": "zapier"})
    assert response.status_code == 201
    assert "no-store" in response.headers["Cache-Control"]
    html = response.get_data(as_text=True)
    plaintext = re.search(r'id="new-token-value" type="text" readonly value="([^"]+)"', html).group(1)
    assert plaintext.startswith("sdb_")
    assert user_for_token(db, plaintext).id == me.id
    (token,) = db.session.scalars(select(ApiToken)).all()
    assert token.token_hash != plaintext and plaintext not in token.token_hash
    assert f"<code>{token.prefix}…</code>" in html
    # the next page shows the prefix, never the token again
    again = client.get("/tokens/").get_data(as_text=True)
    assert plaintext not in again and 'id="new-token"' not in again and token.prefix in again
    with client.session_transaction() as session:
        assert plaintext not in str(dict(session))


def test_name_is_required_inline(client, db, login):
    login("viewer")
    response = client.post("/tokens/", data={"name": "  "})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert '<small id="name-error" class="field-error">This field is required.</small>' in html
    assert token_count(db) == 0


def test_long_name_is_refused_inline(client, db, login):
    login("viewer")
    html = client.post("/tokens/", data={"name": "x" * 101}).get_data(as_text=True)
    assert 'id="name-error" class="field-error">Field cannot be longer than 100 characters.' in html
    assert token_count(db) == 0


def test_revoke_through_htmx_swaps_the_row(client, db, login):
    me = login("viewer")
    new = create_token(db, me.id, "old-script")
    token_id, plaintext = new.token.id, new.plaintext
    html = client.get("/tokens/").get_data(as_text=True)
    assert f'hx-post="/tokens/{token_id}/revoke" hx-target="closest tr" hx-swap="outerHTML"' in html
    assert 'hx-confirm="Revoke the token “old-script”? Scripts using it will stop working."' in html
    response = client.post(f"/tokens/{token_id}/revoke", data={"confirm": "yes"}, headers=HTMX)
    assert response.status_code == 200
    fragment = response.get_data(as_text=True)
    assert "<html" not in fragment and fragment.lstrip().startswith(f'<tr id="token-{token_id}" class="revoked">')
    assert "revoked" in fragment and "revoke-token" not in fragment
    assert user_for_token(db, plaintext) is None


def test_revoke_without_htmx_redirects(client, db, login):
    me = login("viewer")
    token_id = create_token(db, me.id, "x").token.id
    response = client.post(f"/tokens/{token_id}/revoke", data={"confirm": "yes"}, follow_redirects=True)
    assert response.request.path == "/tokens/"
    assert "Token revoked" in response.get_data(as_text=True)


def test_cannot_revoke_someone_elses_token(client, db, login, make_user):
    login("admin")
    other = create_token(db, make_user("viewer").id, "theirs")
    other_id, plaintext = other.token.id, other.plaintext
    assert client.post(f"/tokens/{other_id}/revoke").status_code == 404
    assert client.post(f"/tokens/{uuid.uuid4()}/revoke").status_code == 404
    assert user_for_token(db, plaintext) is not None


class TestCsrfEnforced:
    @pytest.fixture
    def app_config(self, app_config):
        return {**app_config, "WTF_CSRF_ENABLED": True}

    def test_create_without_token_is_refused(self, client, db, login):
        login("viewer")
        response = client.post("/tokens/", data={"name": "ci"})
        assert response.status_code == 400
        assert token_count(db) == 0

    def test_create_with_token_works(self, client, db, login):
        login("viewer")
        token = csrf_token_from(client.get("/tokens/").get_data(as_text=True))
        assert client.post("/tokens/", data={"name": "ci", "csrf_token": token}).status_code == 201

    def test_revoke_without_token_is_refused(self, client, db, login):
        me = login("viewer")
        new = create_token(db, me.id, "kept")
        token_id, plaintext = new.token.id, new.plaintext
        assert client.post(f"/tokens/{token_id}/revoke", headers=HTMX).status_code == 400
        assert user_for_token(db, plaintext) is not None


def test_revoke_without_javascript_asks_first(client, db, login):
    me = login("viewer")
    new = create_token(db, me.id, "deploy")
    html = client.post(f"/tokens/{new.token.id}/revoke").get_data(as_text=True)
    assert '<h1 id="confirm-question">Revoke the token “deploy”?</h1>' in html
    assert user_for_token(db, new.plaintext) is not None
    client.post(f"/tokens/{new.token.id}/revoke", data={"confirm": "yes"})
    assert user_for_token(db, new.plaintext) is None


def test_revoke_all_asks_then_revokes_every_active_token(client, db, login, make_user):
    me = login("viewer")
    mine = [create_token(db, me.id, name) for name in ("ci", "zapier")]
    theirs = create_token(db, make_user("viewer").id, "other")
    page = client.get("/tokens/").get_data(as_text=True)
    assert '<form method="post" action="/tokens/revoke-all" id="revoke-all-form"' in page
    html = client.post("/tokens/revoke-all").get_data(as_text=True)
    assert '<h1 id="confirm-question">Revoke all your API tokens?</h1>' in html
    assert all(user_for_token(db, new.plaintext) for new in mine)
    response = client.post("/tokens/revoke-all", data={"confirm": "yes"}, follow_redirects=True)
    assert "Revoked 2 tokens: they no longer work for API calls." in response.get_data(as_text=True)
    assert not any(user_for_token(db, new.plaintext) for new in mine)
    assert user_for_token(db, theirs.plaintext) is not None  # only my own
    assert 'id="revoke-all"' not in response.get_data(as_text=True)  # nothing left to revoke


def test_an_unconfirmed_htmx_revoke_is_refused_and_changes_nothing(client, db, login):
    me = login("viewer")
    new = create_token(db, me.id, "deploy")
    response = client.post(f"/tokens/{new.token.id}/revoke", headers=HTMX)
    assert response.status_code == 400
    assert "Revoke the token “deploy”? Confirm first" in response.get_data(as_text=True)
    assert user_for_token(db, new.plaintext) is not None
