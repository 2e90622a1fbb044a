"""Passwords: at least 12 characters; a user changes their own (the current one as proof, their
other sessions signed out); an admin resets one on the users page or with
`flask users set-password` (the user is signed out everywhere); never in the ledger."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from dashboard.errors import InvalidInput
from dashboard.models import LedgerEvent
from dashboard.users import check_password, create_user

from conftest import PASSWORD

NEW = "a brand new passphrase"


def test_eleven_characters_are_too_few(db):
    with pytest.raises(InvalidInput, match="needs at least 12 characters"):
        create_user(db, "short@example.com", "elevenchars", "viewer")


def test_a_user_changes_their_own_password(app, client, db, login):
    user = login("editor")
    email = user.email
    page = client.get("/profile/password")
    assert page.status_code == 200 and 'autocomplete="current-password"' in page.get_data(as_text=True)

    wrong = client.post("/profile/password", data={"current_password": "not it at all",
                                                  "new_password": NEW, "confirm": NEW})
    assert wrong.status_code == 400 and "is not your current password" in wrong.get_data(as_text=True).lower()
    short = client.post("/profile/password", data={"current_password": PASSWORD,
                                                  "new_password": "too short", "confirm": "too short"})
    assert short.status_code == 400 and "Use at least 12 characters." in short.get_data(as_text=True)
    assert check_password(db, email, PASSWORD) is not None  # nothing changed

    done = client.post("/profile/password", data={"current_password": PASSWORD,
                                                 "new_password": NEW, "confirm": NEW})
    assert done.status_code == 302
    assert client.get("/").status_code == 200  # this session stays signed in
    assert check_password(db, email, NEW) is not None and check_password(db, email, PASSWORD) is None
    events = list(db.session.scalars(select(LedgerEvent).where(LedgerEvent.event_type == "user_password_changed")))
    assert len(events) == 1 and NEW not in json.dumps(events[0].event_metadata)


def test_an_admin_resets_a_password_and_the_user_is_signed_out(app, client, db, login, make_user, sign_in_as):
    from flask import g

    target = make_user("viewer")
    target_id, email = target.id, target.email
    victim_client = app.test_client()
    sign_in_as(victim_client, target_id)
    login("admin")
    assert client.get("/users/").get_data(as_text=True).count("reset-password") >= 2

    response = client.post(f"/users/{target_id}/password", data={"new_password": NEW})

    assert response.status_code == 302
    assert check_password(db, email, NEW) is not None
    g.pop("_login_user", None)
    assert victim_client.get("/").status_code == 302  # signed out


def test_viewers_and_editors_cannot_reset_passwords(client, login, make_user):
    target = make_user("viewer")
    login("editor")
    assert client.post(f"/users/{target.id}/password", data={"new_password": NEW}).status_code == 403


def test_flask_users_set_password(app, db, make_user):
    user = make_user("viewer")
    email = user.email
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "set-password", email, "--password-stdin"], input=NEW + "\n")
    assert result.exit_code == 0, result.output
    assert NEW not in result.output
    db.session.remove()
    assert check_password(db, email, NEW) is not None
    refused = runner.invoke(args=["users", "set-password", email, "--password-stdin"], input="short\n")
    assert refused.exit_code != 0 and "needs at least 12 characters" in refused.output
