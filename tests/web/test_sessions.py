"""Sessions end on the server: after sign-out a copy of the cookie taken before no longer signs
anyone in; nor does one from before a deactivation; a session ends after the idle timeout and
the absolute lifetime."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from dashboard.models import UserSession, utcnow

from conftest import PASSWORD


def sign_in(client, user) -> str:
    """Sign in through the form; the session cookie's value."""
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    data = {"email": user.email, "password": PASSWORD}
    if token:
        data["csrf_token"] = token.group(1)
    response = client.post("/login", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client.get_cookie("session").value


def with_cookie(app, cookie: str):
    other = app.test_client()
    other.set_cookie("session", cookie)
    return other


def signed_in(client) -> bool:
    from flask import g

    # The test's app context is shared by its requests (a server gives each its own): forget
    # the user the previous request loaded, so this one asks its session again.
    g.pop("_login_user", None)
    return client.get("/").status_code == 200


def test_a_cookie_copied_before_sign_out_stops_working(app, client, make_user):
    user = make_user("editor")
    copied = sign_in(client, user)
    assert signed_in(with_cookie(app, copied))

    from flask import g

    g.pop("_login_user", None)
    client.post("/logout")

    assert not signed_in(client)
    assert not signed_in(with_cookie(app, copied))


def test_deactivation_ends_every_session_of_the_user(app, client, db, make_user):
    from dashboard.users import set_user_active

    user = make_user("editor")
    copied = sign_in(client, user)
    set_user_active(db, user.id, False)
    set_user_active(db, user.id, True)  # reactivated: the old sessions stay ended
    db.session.remove()

    assert not signed_in(with_cookie(app, copied))
    assert not signed_in(client)


@pytest.mark.parametrize("column, setting", [("last_seen_at", "SESSION_IDLE_TIMEOUT_SECONDS"),
                                             ("created_at", "SESSION_ABSOLUTE_LIFETIME_SECONDS")])
def test_a_session_past_its_time_ends(app, client, db, make_user, column, setting):
    user = make_user("viewer")
    user_id = user.id
    sign_in(client, user)
    assert signed_in(client)
    row = db.session.scalar(select(UserSession).where(UserSession.user_id == user_id))
    setattr(row, column, utcnow() - timedelta(seconds=app.config[setting] + 1))
    db.session.commit()
    db.session.remove()

    assert not signed_in(client)
    ended = db.session.scalar(select(UserSession).where(UserSession.user_id == user_id))
    assert ended.ended_at is not None


def test_a_session_in_use_stays_alive(app, client, db, make_user):
    user = make_user("viewer")
    sign_in(client, user)
    row = db.session.scalar(select(UserSession).where(UserSession.user_id == user.id))
    row.last_seen_at = utcnow() - timedelta(seconds=app.config["SESSION_IDLE_TIMEOUT_SECONDS"] - 30)
    db.session.commit()
    db.session.remove()
    assert signed_in(client)
    assert signed_in(client)  # the request above counted as activity


def test_a_new_secret_key_takes_effect_at_the_next_request(app, client, make_user):
    """The cookie's serializer is made once per set of keys, not once per process."""
    cookie = sign_in(client, make_user("viewer"))
    assert signed_in(with_cookie(app, cookie))
    old_key = app.secret_key
    app.secret_key = "rotated-" + str(old_key)
    assert not signed_in(with_cookie(app, cookie))  # signed with a key no longer accepted
    app.config["SECRET_KEY_FALLBACKS"] = [old_key]
    assert signed_in(with_cookie(app, cookie))


def test_an_api_call_with_a_token_gets_no_session_cookie(client, api_headers):
    response = client.get("/api/clips", headers=api_headers("viewer"))
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers and client.get_cookie("session") is None
