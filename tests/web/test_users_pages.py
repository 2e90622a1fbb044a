"""Users page (admins): list and search, create, change role, deactivate and reactivate."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from dashboard import users as user_service
from dashboard.errors import Conflict
from dashboard.models import LedgerEvent, User

from conftest import PASSWORD

HTMX = {"HX-Request": "true"}


def csrf_token_from(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def fresh(db, user) -> User:
    db.session.expire_all()
    return db.session.get(User, user.id)


def events(db, event_type) -> list[dict]:
    return db.session.scalars(select(LedgerEvent.event_metadata)
                              .where(LedgerEvent.event_type == event_type)).all()


def user_count(db) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(User))


PAGES = ["/users/", "/users/new"]
ACTIONS = ["/users/new", "/users/{id}/role", "/users/{id}/deactivate", "/users/{id}/reactivate"]


@pytest.mark.parametrize("role, status", [("viewer", 403), ("editor", 403), ("admin", 200)])
@pytest.mark.parametrize("path", PAGES)
def test_pages_are_for_admins(client, login, role, status, path):
    login(role)
    assert client.get(path).status_code == status


@pytest.mark.parametrize("role", ["viewer", "editor"])
@pytest.mark.parametrize("path", ACTIONS)
def test_actions_are_for_admins(client, db, login, make_user, role, path):
    target = make_user("viewer")
    login(role)
    response = client.post(path.format(id=target.id),
                           data={"email": "new@example.com", "password": PASSWORD, "role": "admin",
                                 f"u{target.id.hex}-role": "admin"})
    assert response.status_code == 403
    assert (fresh(db, target).role, fresh(db, target).active) == ("viewer", True)
    assert user_count(db) == 2


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_users_link_only_for_admins(client, login, role):
    login(role)
    assert 'href="/users/"' not in client.get("/").get_data(as_text=True)


def test_admin_sees_users_link_and_list(client, login, make_user):
    me = login("admin")
    other = make_user("editor", email="zoe@example.com")
    html = client.get("/users/").get_data(as_text=True)
    assert 'href="/users/"' in html
    assert html.index(me.email) < html.index("zoe@example.com")  # by email
    my_row = re.search(rf'<tr id="user-{me.id}".*?</tr>', html, re.S).group(0)
    other_row = re.search(rf'<tr id="user-{other.id}".*?</tr>', html, re.S).group(0)
    assert "(you)" in my_row and "change-role" not in my_row and "deactivate-user" not in my_row
    assert "change-role" in other_row and "deactivate-user" in other_row
    assert f'<label for="u{other.id.hex}-role" class="visually-hidden">Role of zoe@example.com</label>' in other_row
    assert '<option selected value="editor">Editor</option>' in other_row


def test_search_as_you_type_returns_the_table_fragment(client, login, make_user):
    login("admin")
    make_user("viewer", email="anna@example.com")
    make_user("viewer", email="bob@example.org")
    response = client.get("/users/?q=EXAMPLE.ORG", headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    assert html.lstrip().startswith(
        '<p id="user-search-status" hx-swap-oob="innerHTML">1 user matching “example.org”</p>')
    assert '<div id="user-table" class="table-wrap">' in html
    assert "bob@example.org" in html and "anna@example.com" not in html
    assert "HX-Request" in response.headers["Vary"]
    # the full page for a browser, or for htmx restoring history after a back button
    for headers in ({}, {**HTMX, "HX-History-Restore-Request": "true"}):
        page = client.get("/users/?q=example.org", headers=headers).get_data(as_text=True)
        assert page.startswith("<!doctype html>") and 'value="example.org"' in page
        assert ('<p id="user-search-status" class="muted" role="status">1 user matching “example.org”</p>'
                in page) and "hx-swap-oob" not in page
    assert 'hx-trigger="input changed delay:200ms, search"' in page
    nothing = client.get("/users/?q=nobody", headers=HTMX).get_data(as_text=True)
    assert 'id="no-users"' in nothing and "nobody" in nothing


def test_search_treats_wildcards_literally(client, login, make_user):
    login("admin")
    make_user("viewer", email="anna@example.com")
    html = client.get("/users/?q=%25", headers=HTMX).get_data(as_text=True)
    assert "anna@example.com" not in html


def test_create_user(client, db, login):
    login("admin")
    html = client.get("/users/new").get_data(as_text=True)
    for field_id in ("email", "role", "password"):
        assert f'<label for="{field_id}">' in html
    response = client.post("/users/new", data={"email": "New@Example.com", "role": "editor",
                                               "password": "a long enough password"})
    assert response.status_code == 302
    user = user_service.find_user(db, "new@example.com")
    assert user.role == "editor"
    assert user_service.check_password(db, "new@example.com", "a long enough password").id == user.id
    assert events(db, "user_created")[-1] == {"email": "new@example.com", "role": "editor"}
    page = client.get(response.location).get_data(as_text=True)
    assert "Added editor new@example.com." in page
    assert "a long enough password" not in page


@pytest.mark.parametrize("data, field, message", [
    ({"email": "", "role": "viewer", "password": "long enough pw"}, "email", "This field is required."),
    ({"email": "no-at-sign", "role": "viewer", "password": "long enough pw"}, "email",
     "Is not an email address."),
    ({"email": "a@example.com", "role": "viewer", "password": "short"}, "password",
     "Use at least 12 characters."),
    ({"email": "a@example.com", "role": "owner", "password": "long enough pw"}, "role", "Not a valid choice."),
])
def test_create_validation_inline(client, db, login, data, field, message):
    login("admin")
    response = client.post("/users/new", data=data)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert f'<small id="{field}-error" class="field-error">{message}</small>' in html
    assert user_count(db) == 1
    assert f'value="{data["password"]}"' not in html  # the password is never sent back


def test_duplicate_email_is_shown_on_the_email_field(client, db, login, make_user):
    login("admin")
    make_user("viewer", email="taken@example.com")
    html = client.post("/users/new", data={"email": "taken@example.com", "role": "viewer",
                                           "password": "long enough pw"}).get_data(as_text=True)
    assert ('<small id="email-error" class="field-error">A user with email taken@example.com '
            'already exists.</small>') in html


def test_change_role_through_htmx(client, db, login, make_user):
    me = login("admin")
    target = make_user("viewer")
    response = client.post(f"/users/{target.id}/role", data={f"u{target.id.hex}-role": "editor"}, headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    assert html.lstrip().startswith(f'<tr id="user-{target.id}"')
    assert f"{target.email} is now editor." in html
    assert '<option selected value="editor">' in html
    assert fresh(db, target).role == "editor"
    assert events(db, "user_role_changed") == [{"email": target.email, "role": "editor",
                                                "previous_role": "viewer", "by": str(me.id)}]


def test_change_role_without_htmx_redirects_with_a_flash(client, db, login, make_user):
    login("admin")
    target = make_user("editor")
    response = client.post(f"/users/{target.id}/role", data={f"u{target.id.hex}-role": "viewer"},
                           follow_redirects=True)
    assert response.request.path == "/users/"
    assert f"{target.email} is now viewer." in response.get_data(as_text=True)


def test_invalid_role_is_shown_in_the_row(client, db, login, make_user):
    login("admin")
    target = make_user("viewer")
    html = client.post(f"/users/{target.id}/role", data={f"u{target.id.hex}-role": "root"},
                       headers=HTMX).get_data(as_text=True)
    assert '<small class="field-error">Pick one of the roles.</small>' in html
    assert fresh(db, target).role == "viewer"


def test_admins_cannot_demote_or_deactivate_themselves(client, db, login, make_user):
    me = login("admin")
    make_user("admin")
    html = client.post(f"/users/{me.id}/role", data={f"u{me.id.hex}-role": "viewer"},
                       headers=HTMX).get_data(as_text=True)
    assert "You cannot change the role of yourself; ask another admin." in html
    html = client.post(f"/users/{me.id}/deactivate", data={"confirm": "yes"}, headers=HTMX).get_data(as_text=True)
    assert "You cannot deactivate yourself; ask another admin." in html
    assert (fresh(db, me).role, fresh(db, me).active) == ("admin", True)


def test_the_last_active_admin_stays(db, make_user):
    only = make_user("admin")
    with pytest.raises(Conflict, match="last active admin"):
        user_service.change_role(db, only.id, "viewer")
    with pytest.raises(Conflict, match="last active admin"):
        user_service.set_user_active(db, only.id, False)
    second = make_user("admin")
    user_service.set_user_active(db, second.id, False)
    with pytest.raises(Conflict):
        user_service.change_role(db, only.id, "editor")


def test_deactivate_and_reactivate(client, db, login, make_user):
    login("admin")
    target = make_user("editor")
    html = client.post(f"/users/{target.id}/deactivate", data={"confirm": "yes"}, headers=HTMX).get_data(as_text=True)
    assert '<span class="badge badge-inactive">deactivated</span>' in html
    assert f'hx-post="/users/{target.id}/reactivate"' in html
    assert fresh(db, target).active is False
    assert user_service.check_password(db, target.email, PASSWORD) is None
    assert len(events(db, "user_deactivated")) == 1

    html = client.post(f"/users/{target.id}/reactivate", headers=HTMX).get_data(as_text=True)
    assert '<span class="badge badge-success">active</span>' in html
    assert fresh(db, target).active is True
    assert len(events(db, "user_reactivated")) == 1


def test_unknown_user_is_404(client, login):
    login("admin")
    assert client.post("/users/00000000-0000-0000-0000-000000000000/deactivate").status_code == 404


class TestCsrfEnforced:
    @pytest.fixture
    def app_config(self, app_config):
        return {**app_config, "WTF_CSRF_ENABLED": True}

    def test_create_without_token_is_refused(self, client, db, login):
        login("admin")
        response = client.post("/users/new", data={"email": "x@example.com", "role": "admin",
                                                   "password": "long enough pw"})
        assert response.status_code == 400
        assert user_count(db) == 1

    def test_create_with_token_works(self, client, db, login):
        login("admin")
        token = csrf_token_from(client.get("/users/new").get_data(as_text=True))
        response = client.post("/users/new", data={"email": "x@example.com", "role": "admin",
                                                   "password": "long enough pw", "csrf_token": token})
        assert response.status_code == 302 and user_count(db) == 2

    def test_role_change_and_deactivate_without_token_are_refused(self, client, db, login, make_user):
        login("admin")
        target = make_user("viewer")
        assert client.post(f"/users/{target.id}/role", data={f"u{target.id.hex}-role": "admin"},
                           headers=HTMX).status_code == 400
        assert client.post(f"/users/{target.id}/deactivate", data={"confirm": "yes"}, headers=HTMX).status_code == 400
        assert (fresh(db, target).role, fresh(db, target).active) == ("viewer", True)

    def test_row_forms_carry_their_token(self, client, db, login, make_user):
        login("admin")
        target = make_user("viewer")
        html = client.get("/users/").get_data(as_text=True)
        row = re.search(rf'<tr id="user-{target.id}".*?</tr>', html, re.S).group(0)
        token = csrf_token_from(row)
        response = client.post(f"/users/{target.id}/role",
                               data={f"u{target.id.hex}-role": "editor", f"u{target.id.hex}-csrf_token": token},
                               headers=HTMX)
        assert response.status_code == 200 and fresh(db, target).role == "editor"


def test_deactivate_asks_first(client, db, login, make_user):
    login("admin")
    target = make_user("editor")
    page = client.get("/users/").get_data(as_text=True)
    form = re.search(rf'<form[^>]*action="/users/{target.id}/deactivate".*?>', page, re.S).group(0)
    assert f'hx-confirm="Deactivate {target.email}? They can no longer sign in' in form
    assert """hx-vals='{"confirm": "yes"}'""" in form
    html = client.post(f"/users/{target.id}/deactivate").get_data(as_text=True)
    assert f'<h1 id="confirm-question">Deactivate {target.email}?</h1>' in html
    assert fresh(db, target).active is True
    client.post(f"/users/{target.id}/deactivate", data={"confirm": "yes"})
    assert fresh(db, target).active is False
    # Reactivating takes nothing away: it does not ask.
    client.post(f"/users/{target.id}/reactivate")
    assert fresh(db, target).active is True
