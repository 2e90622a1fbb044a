"""Sign-in, sign-out, the failed sign-in throttle, and the login-required matrix of the pages."""

from __future__ import annotations

import re
import uuid

import pytest

from dashboard.users import set_user_active
from dashboard.web import auth

from conftest import PASSWORD


def csrf_token_from(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def sign_in(client, email, password=PASSWORD, next_url=None, **kwargs):
    url = "/login" + (f"?next={next_url}" if next_url else "")
    return client.post(url, data={"email": email, "password": password}, **kwargs)


def signed_in(client) -> bool:
    with client.session_transaction() as session:
        return "_user_id" in session


# URLs of the sign-in, home, accounts, tokens and users pages; {id} is a made-up UUID.
GET_PAGES = ["/", "/accounts/", "/accounts/new", "/accounts/{id}/edit", "/accounts/{id}/credentials",
             "/tokens/", "/users/", "/users/new"]
POST_ACTIONS = ["/failures/{id}/retry", "/accounts/new", "/accounts/{id}/edit",
                "/accounts/{id}/credentials", "/accounts/{id}/credentials/remove", "/tokens/",
                "/tokens/{id}/revoke", "/users/new", "/users/{id}/role", "/users/{id}/deactivate",
                "/users/{id}/reactivate", "/logout"]


@pytest.mark.parametrize("path", GET_PAGES)
def test_pages_need_a_signed_in_user(client, path):
    response = client.get(path.format(id=uuid.uuid4()))
    assert response.status_code == 302
    assert response.location.startswith("/login?next=")


@pytest.mark.parametrize("path", POST_ACTIONS)
def test_actions_need_a_signed_in_user(client, path):
    response = client.post(path.format(id=uuid.uuid4()))
    assert response.status_code == 302
    assert response.location.startswith("/login")


def test_login_page_has_labelled_fields(client):
    html = client.get("/login").get_data(as_text=True)
    assert '<label for="email">Email</label>' in html
    assert '<label for="password">Password</label>' in html
    assert re.search(r'<input[^>]*id="password"[^>]*type="password"', html)
    assert 'autocomplete="current-password"' in html


def test_sign_in_and_out(client, make_user):
    user = make_user("viewer")
    response = sign_in(client, user.email.upper())  # emails are case-insensitive
    assert response.status_code == 302 and response.location == "/"
    assert signed_in(client)
    page = client.get("/").get_data(as_text=True)
    assert f"Signed in as {user.email}" in page
    assert user.email in page  # the sign-out button names the user

    response = client.post("/logout")
    assert response.status_code == 302 and response.location == "/login"
    assert not signed_in(client)
    assert client.get("/").status_code == 302


def test_logout_is_post_only(client, login):
    login("viewer")
    assert client.get("/logout").status_code == 405


def test_signed_in_user_visiting_login_goes_home(client, login):
    login("viewer")
    response = client.get("/login")
    assert response.status_code == 302 and response.location == "/"


@pytest.mark.parametrize("next_url, expected", [
    ("/accounts/", "/accounts/"),
    ("/users/?q=a", "/users/?q=a"),
    ("https://evil.example/", "/"),
    ("//evil.example/", "/"),
    ("/\\evil.example", "/"),
    ("javascript:alert(1)", "/"),
    ("accounts", "/"),
])
def test_next_must_be_a_local_path(client, make_user, next_url, expected):
    user = make_user("admin")
    response = client.post("/login", query_string={"next": next_url},
                           data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response.location == expected


def test_login_required_redirect_comes_back(client, make_user):
    user = make_user("admin")
    to_login = client.get("/accounts/")
    login_page = client.get(to_login.location)
    assert "Please sign in to see that page." in login_page.get_data(as_text=True)
    response = client.post(to_login.location, data={"email": user.email, "password": PASSWORD})
    assert response.location == "/accounts/"


@pytest.mark.parametrize("email, password", [
    ("nobody@example.com", PASSWORD),
    (None, "wrong password!"),
])
def test_failed_sign_in_shows_one_inline_message(client, make_user, email, password):
    user = make_user("viewer")
    response = sign_in(client, email or user.email, password)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'id="login-error"' in html
    assert "Wrong email or password" in html
    assert not signed_in(client)
    assert password not in html  # the password input is never re-filled


def test_missing_fields_show_inline_errors(client):
    response = client.post("/login", data={"email": "", "password": ""})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'id="email-error" class="field-error"' in html
    assert 'id="password-error" class="field-error"' in html
    assert 'aria-invalid="true"' in html


def test_deactivated_user_cannot_sign_in(client, db, make_user):
    user = make_user("editor")
    set_user_active(db, user.id, False)
    response = sign_in(client, user.email)
    assert response.status_code == 400
    assert not signed_in(client)


def test_deactivated_user_loses_a_live_session(client, db, login):
    user = login("editor")
    assert client.get("/").status_code == 200
    set_user_active(db, user.id, False)
    response = client.get("/")
    assert response.status_code == 302 and response.location.startswith("/login")


class TestThrottle:
    def fail(self, client, email, times, ip="10.0.0.1"):
        for _ in range(times):
            response = sign_in(client, email, "not the password", environ_base={"REMOTE_ADDR": ip})
            assert response.status_code == 400

    def test_fifth_failure_locks_out_without_checking_the_password(self, client, make_user, monkeypatch):
        user = make_user("viewer")
        self.fail(client, user.email, 5)

        def must_not_be_called(*args, **kwargs):
            raise AssertionError("the password was checked while throttled")

        monkeypatch.setattr(auth, "check_password", must_not_be_called)
        response = sign_in(client, user.email, environ_base={"REMOTE_ADDR": "10.0.0.1"})
        assert response.status_code == 429
        html = response.get_data(as_text=True)
        assert "Too many failed sign-ins for this email. Wait 15 minutes and try again." in html
        assert 'id="login-error"' in html
        assert not signed_in(client)

    def test_other_ip_and_other_email_are_not_locked_out(self, client, make_user):
        user, other = make_user("viewer"), make_user("viewer")
        self.fail(client, user.email, 5)
        assert sign_in(client, user.email, environ_base={"REMOTE_ADDR": "10.0.0.2"}).status_code == 302
        client.post("/logout")
        assert sign_in(client, other.email, environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code == 302

    def test_lockout_ends_after_the_window(self, app, client, db, make_user):
        from datetime import timedelta

        from sqlalchemy import select

        from dashboard.models import SignInAttempt

        user = make_user("viewer")
        self.fail(client, user.email, 5)
        assert sign_in(client, user.email, environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code == 429
        for attempt in db.session.scalars(select(SignInAttempt)):
            attempt.created_at -= timedelta(minutes=15)
        db.session.commit()
        assert sign_in(client, user.email, environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code == 302

    def test_success_resets_the_count(self, client, make_user):
        user = make_user("viewer")
        self.fail(client, user.email, 4)
        assert sign_in(client, user.email, environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code == 302
        client.post("/logout")
        self.fail(client, user.email, 4)
        assert sign_in(client, user.email, environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code == 302

    def test_the_limit_holds_across_processes(self, app, client, make_user):
        """Another app on the same database (another gunicorn worker, another machine) sees the
        same count: the throttle lives in the database, not in a process."""
        from dashboard import create_app
        from dashboard.extensions import db

        from conftest import base_config

        email = make_user("viewer").email
        self.fail(client, email, 3)
        db.session.remove()  # the test's transaction would hold SQLite's write lock
        other_app = create_app({**base_config(app.config["SQLALCHEMY_DATABASE_URI"]),
                                "QUEUE_URL": app.config["QUEUE_URL"]})
        with other_app.app_context():
            other = other_app.test_client()
            self.fail(other, email, 2)
            assert sign_in(other, email, environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code == 429
            db.session.remove()
        assert sign_in(client, email, environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code == 429

    def test_behind_a_trusted_proxy_the_throttle_keys_on_the_real_client(self, app, client, make_user):
        """With TRUSTED_PROXIES=1 two clients behind the one proxy have a limit each; without it
        a forged X-Forwarded-For cannot buy a guesser a fresh limit."""
        from dashboard import create_app
        from dashboard.extensions import db

        from conftest import base_config

        email = make_user("viewer").email
        proxy = {"REMOTE_ADDR": "10.9.9.9"}
        for n in range(5):  # no proxy trusted: the forged header is ignored, the proxy's address counts
            response = sign_in(client, email, "not the password", environ_base=proxy,
                               headers={"X-Forwarded-For": f"198.51.100.{n}"})
            assert response.status_code == 400
        assert sign_in(client, email, environ_base=proxy,
                       headers={"X-Forwarded-For": "198.51.100.77"}).status_code == 429
        db.session.remove()
        behind_proxy = create_app({**base_config(app.config["SQLALCHEMY_DATABASE_URI"]),
                                   "QUEUE_URL": app.config["QUEUE_URL"], "TRUSTED_PROXIES": 1})
        with behind_proxy.app_context():
            proxied = behind_proxy.test_client()
            for _ in range(5):
                response = sign_in(proxied, email, "not the password", environ_base=proxy,
                                   headers={"X-Forwarded-For": "203.0.113.7"})
                assert response.status_code == 400
            assert sign_in(proxied, email, environ_base=proxy,
                           headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 429
            other_client = behind_proxy.test_client()
            assert sign_in(other_client, email, environ_base=proxy,
                           headers={"X-Forwarded-For": "203.0.113.8"}).status_code == 302
            db.session.remove()

    def test_a_concurrent_burst_gets_no_more_guesses_than_the_limit(self, app, make_user):
        from queue_support import fire_together

        email = make_user("viewer").email
        responses = fire_together(app, 12, lambda c: sign_in(
            c, email, "not the password", environ_base={"REMOTE_ADDR": "10.0.0.9"}))
        codes = sorted(r.status_code for r in responses)
        assert codes.count(400) <= 5 and codes.count(429) >= 7, codes

    def test_an_account_is_throttled_across_addresses(self, app, client, make_user):
        app.config.update(LOGIN_THROTTLE_ACCOUNT_MAX_FAILURES=6)
        user = make_user("viewer")
        for n in range(6):
            self.fail(client, user.email, 1, ip=f"10.1.0.{n}")
        response = sign_in(client, user.email, environ_base={"REMOTE_ADDR": "10.2.0.1"})
        assert response.status_code == 429

    def test_sign_ins_are_logged_without_the_password(self, client, make_user, caplog):
        import logging

        user = make_user("viewer")
        with caplog.at_level(logging.INFO):
            sign_in(client, user.email, "a wrong secret guess", environ_base={"REMOTE_ADDR": "10.0.0.3"})
            sign_in(client, user.email, environ_base={"REMOTE_ADDR": "10.0.0.3"})
        lines = [record.getMessage() for record in caplog.records]
        assert f"sign-in failed for {user.email} from 10.0.0.3" in lines
        assert f"sign-in succeeded for {user.email} from 10.0.0.3" in lines
        assert not any("a wrong secret guess" in line or PASSWORD in line for line in lines)

    def test_limit_and_window_are_settings(self, app, client, make_user):
        app.config.update(LOGIN_THROTTLE_MAX_FAILURES=2, LOGIN_THROTTLE_WINDOW_SECONDS=60)
        user = make_user("viewer")
        self.fail(client, user.email, 2)
        response = sign_in(client, user.email, environ_base={"REMOTE_ADDR": "10.0.0.1"})
        assert response.status_code == 429
        assert "Wait 1 minute and try again." in response.get_data(as_text=True)


def test_local_path():
    assert auth.local_path("/clips/?q=x") == "/clips/?q=x"
    for bad in (None, "", "http://x", "//x", "/\\x", "x/y", "/a\nb", "\x00/"):
        assert auth.local_path(bad) is None


class TestCsrfEnforced:
    @pytest.fixture
    def app_config(self, app_config):
        return {**app_config, "WTF_CSRF_ENABLED": True}

    def test_sign_in_without_token_is_refused(self, client, make_user):
        user = make_user("viewer")
        response = sign_in(client, user.email)
        assert response.status_code == 400
        assert not signed_in(client)

    def test_sign_in_with_token_works(self, client, make_user):
        user = make_user("viewer")
        token = csrf_token_from(client.get("/login").get_data(as_text=True))
        response = client.post("/login", data={"email": user.email, "password": PASSWORD,
                                               "csrf_token": token})
        assert response.status_code == 302 and signed_in(client)

    def test_sign_out_without_token_is_refused(self, client, login):
        login("viewer")
        response = client.post("/logout")
        assert response.status_code == 400
        assert signed_in(client)
        token = csrf_token_from(client.get("/").get_data(as_text=True))
        assert client.post("/logout", data={"csrf_token": token}).status_code == 302
        assert not signed_in(client)
