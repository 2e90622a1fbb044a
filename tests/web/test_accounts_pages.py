"""Accounts: the grouped list with publish-mode badges, create/edit (admins), credentials (admins)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from dashboard.credentials import get_account_credentials, key_label, set_account_credentials
from dashboard.models import LedgerEvent, SocialAccount, utcnow

from conftest import ROLES

HTMX = {"HX-Request": "true"}
SECRETS = {
    "access_token": "IGQVJ-page-secret-token-7f3a9",
    "instagram_account_id": "17841400000000777",
    "facebook_page_id": "fbpage-secret-99812",
}


def csrf_token_from(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def accounts(db) -> list[SocialAccount]:
    db.session.expire_all()
    return list(db.session.scalars(select(SocialAccount).order_by(SocialAccount.handle)))


def events(db, event_type) -> int:
    return db.session.scalar(select(func.count()).select_from(LedgerEvent)
                             .where(LedgerEvent.event_type == event_type))


def field_error(html: str, field_id: str) -> str | None:
    match = re.search(rf'<small id="{field_id}-error" class="field-error">([^<]*)</small>', html)
    return match.group(1) if match else None


@pytest.fixture
def family(make_account):
    """An Instagram main account with two satellites, and a TikTok main account."""
    main = make_account("instagram", handle="acme", display_name="Acme")
    sports = make_account("instagram", handle="acme.sports", parent_account_id=main.id)
    food = make_account("instagram", handle="acme.food", parent_account_id=main.id)
    tiktok = make_account("tiktok", handle="acme")
    return {"main": main, "sports": sports, "food": food, "tiktok": tiktok}


# --- access -------------------------------------------------------------------------------

ADMIN_PAGES = ["/accounts/new", "/accounts/{id}/edit", "/accounts/{id}/credentials"]


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_the_list(client, login, family, role):
    login(role)
    assert client.get("/accounts/").status_code == 200


@pytest.mark.parametrize("role, status", [("viewer", 403), ("editor", 403), ("admin", 200)])
@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_role_matrix(client, login, family, role, status, path):
    login(role)
    response = client.get(path.format(id=family["main"].id))
    assert response.status_code == status
    if status == 403:
        html = response.get_data(as_text=True)
        assert "<h1>403 · Forbidden</h1>" in html and "needs the admin role" in html
        assert '<nav aria-label="Main">' in html  # the error page keeps the layout


@pytest.mark.parametrize("role", ["viewer", "editor"])
@pytest.mark.parametrize("path", ["/accounts/new", "/accounts/{id}/edit", "/accounts/{id}/credentials",
                                  "/accounts/{id}/credentials/remove"])
def test_admin_actions_are_refused_to_other_roles(client, db, login, family, role, path):
    set_account_credentials(db, family["main"].id, {"access_token": "x-secret-value"})
    login(role)
    response = client.post(path.format(id=family["main"].id),
                           data={"platform": "instagram", "handle": "new", "access_token": "changed"})
    assert response.status_code == 403
    assert [a.handle for a in accounts(db)] == ["acme", "acme", "acme.food", "acme.sports"]
    assert events(db, "account_credentials_removed") == 0
    assert events(db, "account_credentials_set") == 1


def test_unknown_account_is_404(client, login):
    login("admin")
    assert client.get(f"/accounts/{uuid.uuid4()}/edit").status_code == 404
    assert client.get(f"/accounts/{uuid.uuid4()}/credentials").status_code == 404


# --- the list -----------------------------------------------------------------------------

def test_list_groups_by_platform_with_satellites_under_their_main(client, login, family):
    login("viewer")
    html = client.get("/accounts/").get_data(as_text=True)
    instagram = html[html.index('id="platform-instagram"'):html.index('id="platform-tiktok"')]
    rows = re.findall(r'<tr id="account-([0-9a-f-]+)" class="([^"]+)"', instagram)
    assert rows == [(str(family["main"].id), "main-account"), (str(family["food"].id), "satellite"),
                    (str(family["sports"].id), "satellite")]
    assert "(satellite of @acme)" in instagram
    tiktok = html[html.index('id="platform-tiktok"'):html.index('id="platform-youtube"')]
    assert str(family["tiktok"].id) in tiktok
    assert "No YouTube accounts yet." in html


def test_publish_mode_badges(client, db, login, make_account):
    none = make_account("instagram", handle="none")
    partial = make_account("instagram", handle="partial")
    set_account_credentials(db, partial.id, {"access_token": "a-secret-token"})
    complete = make_account("tiktok", handle="complete")
    set_account_credentials(db, complete.id, {"client_key": "k-secret", "client_secret": "s-secret",
                                              "access_token": "t-secret"})
    broken = make_account("youtube", handle="broken", active=False)
    broken.credentials_ciphertext = "gAAAAA-not-a-fernet-token"
    db.session.commit()
    login("viewer")
    html = client.get("/accounts/").get_data(as_text=True)

    def badge(account):
        row = re.search(rf'<tr id="account-{account.id}".*?</tr>', html, re.S).group(0)
        return re.search(r'class="badge mode-badge ([\w-]+)" data-mode="(\w+)"[^>]*>([^<]+)<', row).groups(), row

    assert badge(none)[0] == ("badge-simulator", "none", "simulator")
    assert badge(partial)[0] == ("badge-incomplete", "incomplete", "incomplete")
    assert badge(complete)[0] == ("badge-ready", "complete", "provider ready")
    assert badge(broken)[0] == ("badge-unreadable", "unreadable", "unreadable")
    assert '<span class="badge badge-inactive">inactive</span>' in badge(broken)[1]
    assert "badge-inactive" not in badge(none)[1]
    for secret in ("a-secret-token", "k-secret", "s-secret", "t-secret"):
        assert secret not in html


def refuse_credentials(db, account, reason, when):
    """What the publishing engine does on a permanent authentication error, at `when`."""
    account.needs_credentials, account.needs_credentials_reason = True, reason
    db.session.add(LedgerEvent(event_type="account_needs_credentials", entity_type="account",
                               entity_id=account.id, event_metadata={"error": reason}, created_at=when))
    db.session.commit()


def test_needs_new_credentials_says_what_happened_when_and_what_to_do(client, db, login, family):
    refuse_credentials(db, family["sports"], "OAuthException: token expired",
                       datetime(2026, 7, 1, 16, 5, tzinfo=UTC))
    login("viewer")
    html = client.get("/accounts/").get_data(as_text=True)
    row = re.search(rf'<tr id="account-{family["sports"].id}".*?</tr>', html, re.S).group(0)
    note = " ".join(re.sub(r"<[^>]+>", "", row[row.index('<div class="needs-credentials-note"'):]).split())
    # A simulator account: the simulator refused, on the UTC clock of a viewer who chose no zone.
    assert ("Publishing to @acme.sports is stopped. The simulator, playing Instagram, refused its "
            "credentials on 2026-07-01 16:05 UTC: OAuthException: token expired.") in note
    assert "An admin must enter new credentials before it can be published to." in note
    assert html.count("badge-needs-credentials") == 1
    assert "needs new credentials" not in row


def test_needs_new_credentials_links_admins_to_the_fix(client, db, login, family):
    refuse_credentials(db, family["sports"], "token revoked", datetime(2026, 7, 1, 16, 5, tzinfo=UTC))
    login("admin")
    html = client.get("/accounts/").get_data(as_text=True)
    row = re.search(rf'<tr id="account-{family["sports"].id}".*?</tr>', html, re.S).group(0)
    assert f'href="/accounts/{family["sports"].id}/credentials" class="enter-credentials">enter new credentials' in row
    page = client.get(f"/accounts/{family['sports'].id}/credentials").get_data(as_text=True)
    note = " ".join(re.sub(r"<[^>]+>", "", page[page.index('<div class="needs-credentials-note"'):]).split())
    assert note.startswith("Publishing to @acme.sports is stopped. The simulator, playing Instagram, refused "
                           "its credentials on 2026-07-01 16:05 UTC: token revoked. "
                           "To publish again, enter new credentials below.")
    # Saving new credentials is the fix: the note goes.
    client.post(f"/accounts/{family['sports'].id}/credentials", data={"access_token": "fresh-token"})
    assert "needs-credentials-note" not in client.get("/accounts/").get_data(as_text=True)


def test_needs_new_credentials_offers_reconnect_when_linking_is_set_up(app, client, db, login, family):
    app.config.update(INSTAGRAM_APP_ID="app-id", INSTAGRAM_APP_SECRET="app-secret")
    refuse_credentials(db, family["main"], "token revoked", datetime(2026, 7, 1, 16, 5, tzinfo=UTC))
    login("admin")
    page = client.get(f"/accounts/{family['main'].id}/credentials").get_data(as_text=True)
    assert (f'or <a href="/accounts/connect/instagram?account={family["main"].id}" class="reconnect-now">'
            'reconnect @acme with Instagram</a>.') in page


def test_remaining_quota_per_account_in_one_query(app, client, db, login, family, make_clip):
    from datetime import timedelta

    from sqlalchemy import event

    from dashboard.models import PublishLog, utcnow

    clip = make_clip()
    now = utcnow()
    for status, at in [("success", now - timedelta(hours=1)), ("success", now - timedelta(hours=23)),
                       ("unconfirmed", now - timedelta(hours=2)), ("failed", now - timedelta(hours=1)),
                       ("success", now - timedelta(hours=25))]:
        db.session.add(PublishLog(clip_id=clip.id, platform="instagram", social_account_id=family["main"].id,
                                  status=status, requested_at=at, started_at=at,
                                  published_at=at if status == "success" else None))
    db.session.commit()
    login("viewer")
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        html = client.get("/accounts/").get_data(as_text=True)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    limit = app.config["PLATFORM_LIMITS"]["instagram"]["posts_per_24h"]
    tiktok_limit = app.config["PLATFORM_LIMITS"]["tiktok"]["posts_per_24h"]

    def quota(account):
        return re.sub(r"<[^>]+>", "", re.search(rf'<td class="nowrap quota" id="quota-{account.id}">(.*?)</td>',
                                                html, re.S).group(1)).strip()

    # Two successes and an unknown outcome in the last 24 h count; the failure and the old one don't.
    assert quota(family["main"]) == f"{limit - 3} of {limit} left"
    assert quota(family["sports"]) == f"{limit} of {limit} left"
    assert quota(family["tiktok"]) == f"{tiktok_limit} of {tiktok_limit} left"
    assert "Posts left (24 h)" in html
    assert sum("publish_logs" in sql for sql in statements) == 1


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_no_admin_controls_for_other_roles(client, login, family, role):
    login(role)
    html = client.get("/accounts/").get_data(as_text=True)
    assert 'id="add-account"' not in html and "edit-account" not in html and "account-credentials" not in html


def test_admin_controls_for_admins(client, login, family):
    login("admin")
    html = client.get("/accounts/").get_data(as_text=True)
    assert 'id="add-account"' in html
    assert f'href="/accounts/{family["main"].id}/edit"' in html
    assert f'href="/accounts/{family["main"].id}/credentials"' in html


# --- create and edit ----------------------------------------------------------------------

def test_create_form_fields(client, login, family):
    login("admin")
    html = client.get("/accounts/new").get_data(as_text=True)
    for field_id in ("platform", "handle", "display_name", "parent_account_id", "active"):
        assert f'<label for="{field_id}">' in html
    # main accounts are offered as parents, grouped by platform
    assert '<optgroup label="Instagram">' in html and '<optgroup label="TikTok">' in html
    assert f'<option value="{family["main"].id}">@acme (Acme)</option>' in html
    assert str(family["sports"].id) not in html  # satellites can't be parents
    assert re.search(r'<input checked id="active"', html)


def test_create_main_account(client, db, login):
    login("admin")
    response = client.post("/accounts/new", data={
        "platform": "youtube", "handle": "@AcmeChannel", "display_name": "Acme Channel",
        "parent_account_id": "", "active": "y"})
    assert response.status_code == 302
    (account,) = accounts(db)
    assert (account.platform, account.handle, account.display_name, account.parent_account_id,
            account.active) == ("youtube", "AcmeChannel", "Acme Channel", None, True)
    assert response.location == f"/accounts/#account-{account.id}"
    assert events(db, "account_created") == 1
    page = client.get("/accounts/").get_data(as_text=True)
    assert "Added YouTube account @AcmeChannel." in page


def test_create_inactive_satellite(client, db, login, family):
    login("admin")
    response = client.post("/accounts/new", data={
        "platform": "instagram", "handle": "acme.travel", "parent_account_id": str(family["main"].id)})
    assert response.status_code == 302
    travel = next(a for a in accounts(db) if a.handle == "acme.travel")
    assert travel.parent_account_id == family["main"].id and travel.active is False


def test_satellite_of_another_platform_is_refused_inline(client, db, login, family):
    login("admin")
    response = client.post("/accounts/new", data={
        "platform": "youtube", "handle": "acme.shorts", "parent_account_id": str(family["main"].id),
        "active": "y"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert field_error(html, "parent_account_id") == (
        "That main account is on Instagram, not YouTube. Pick one of the same platform, or none.")
    assert 'aria-describedby="parent_account_id-help parent_account_id-error"' in html
    assert 'value="acme.shorts"' in html  # what was typed is kept
    assert len(accounts(db)) == 4


def test_service_errors_land_on_their_field(client, db, login, family):
    login("admin")
    # the handle is taken on that platform: the service's Conflict goes next to the handle
    html = client.post("/accounts/new", data={"platform": "instagram", "handle": "acme"}).get_data(as_text=True)
    assert field_error(html, "handle") == "Instagram account @acme already exists."

    # only main accounts of the same platform are offered: anything else is refused on the field
    html = client.post(f"/accounts/{family['tiktok'].id}/edit", data={
        "handle": "acme", "parent_account_id": str(family["sports"].id)}).get_data(as_text=True)
    assert field_error(html, "parent_account_id") == "Not a valid choice."


@pytest.mark.parametrize("data, field, message", [
    ({"platform": "instagram", "handle": ""}, "handle", "This field is required."),
    ({"platform": "instagram", "handle": "no spaces"}, "handle",
     "Use letters, digits, dots, dashes and underscores only."),
    ({"platform": "myspace", "handle": "acme"}, "platform", "Not a valid choice."),
    ({"platform": "instagram", "handle": "x" * 101}, "handle", "Field cannot be longer than 100 characters."),
])
def test_create_validation_messages_inline(client, db, login, data, field, message):
    login("admin")
    response = client.post("/accounts/new", data=data)
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), field) == message
    assert accounts(db) == []


def test_edit_account(client, db, login, family):
    login("admin")
    page = client.get(f"/accounts/{family['sports'].id}/edit").get_data(as_text=True)
    assert 'value="acme.sports"' in page
    assert f'<option selected value="{family["main"].id}">' in page
    assert "Platform: <strong>Instagram</strong>" in page and 'id="platform"' not in page
    response = client.post(f"/accounts/{family['sports'].id}/edit", data={
        "handle": "acme.sport", "display_name": "Acme Sport", "parent_account_id": ""})
    assert response.status_code == 302
    db.session.expire_all()
    sports = db.session.get(SocialAccount, family["sports"].id)
    assert (sports.handle, sports.display_name, sports.parent_account_id, sports.active) == (
        "acme.sport", "Acme Sport", None, False)
    assert events(db, "account_updated") == 1
    html = client.get("/accounts/").get_data(as_text=True)
    row = re.search(rf'<tr id="account-{sports.id}" class="([^"]+)"', html).group(1)
    assert row == "main-account inactive"


def test_a_main_with_satellites_cannot_become_a_satellite(client, db, login, family, make_account):
    other = make_account("instagram", handle="other")
    login("admin")
    response = client.post(f"/accounts/{family['main'].id}/edit", data={
        "handle": "acme", "parent_account_id": str(other.id), "active": "y"})
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), "parent_account_id") == (
        "A main account with satellites cannot become a satellite.")
    db.session.expire_all()
    assert db.session.get(SocialAccount, family["main"].id).parent_account_id is None


def test_edit_offers_only_mains_of_the_same_platform(client, login, family):
    login("admin")
    html = client.get(f"/accounts/{family['tiktok'].id}/edit").get_data(as_text=True)
    assert str(family["main"].id) not in html  # an Instagram main
    html = client.get(f"/accounts/{family['main'].id}/edit").get_data(as_text=True)
    assert f'value="{family["main"].id}"' not in html  # not its own main


# --- credentials --------------------------------------------------------------------------

@pytest.mark.parametrize("platform, keys", [
    ("instagram", ["access_token", "instagram_account_id", "facebook_page_id"]),
    ("tiktok", ["client_key", "client_secret", "access_token", "refresh_token"]),
    ("youtube", ["client_id", "client_secret", "access_token", "refresh_token"]),
])
def test_credentials_form_has_exactly_the_platforms_fields(client, login, make_account, platform, keys):
    account = make_account(platform)
    login("admin")
    html = client.get(f"/accounts/{account.id}/credentials").get_data(as_text=True)
    form = html[html.index('id="credentials-form"'):]
    inputs = re.findall(r'<input ([^>]*)>', form)
    fields = [i for i in inputs if 'type="password"' in i]
    assert [re.search(r'name="(\w+)"', i).group(1) for i in fields] == keys
    for attributes in fields:
        assert 'autocomplete="off"' in attributes
        assert not re.search(r'value="[^"]', attributes)
    for key in keys:
        assert f'<label for="{key}">{key_label(key)}</label>' in form
        assert f">{key}<" not in form  # words, never the raw key
    assert 'data-mode="none"' in html and ">simulator<" in html


def test_saving_credentials_shows_only_key_names(client, db, login, make_account):
    account = make_account("instagram", handle="acme")
    login("admin")
    response = client.post(f"/accounts/{account.id}/credentials", data=SECRETS)
    assert response.status_code == 302 and response.location == f"/accounts/{account.id}/credentials"
    html = client.get(response.location).get_data(as_text=True)
    assert "Saved the credentials of @acme: Access token, Facebook Page ID, Instagram account ID set; " \
           "status provider ready." in html
    assert 'id="credentials-mode">provider ready<' in html
    assert re.search(r'id="credential-keys-set"><span title="access_token">Access token</span>, '
                     r'<span title="facebook_page_id">Facebook Page ID</span>, '
                     r'<span title="instagram_account_id">Instagram account ID</span>', html)
    for value in SECRETS.values():
        assert value not in html
    db.session.expire_all()
    stored = db.session.get(SocialAccount, account.id).credentials_ciphertext
    assert all(value not in stored for value in SECRETS.values())
    assert events(db, "account_credentials_set") == 1


def test_partial_credentials_are_incomplete_and_name_the_missing_keys(client, login, make_account):
    account = make_account("tiktok")
    login("admin")
    client.post(f"/accounts/{account.id}/credentials", data={"client_key": "ck-secret-1", "client_secret": ""})
    html = client.get(f"/accounts/{account.id}/credentials").get_data(as_text=True)
    assert 'id="credentials-mode">incomplete<' in html
    assert ('id="credential-keys-missing"><span title="client_secret">Client secret</span>, '
            '<span title="access_token">Access token</span>') in html
    assert "ck-secret-1" not in html


def test_all_blank_credentials_are_refused_inline(client, db, login, make_account):
    account = make_account("youtube")
    login("admin")
    response = client.post(f"/accounts/{account.id}/credentials", data={"client_id": "", "access_token": " "})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'id="credentials-form-error"' in html
    assert "Type at least one value, or tick a stored key to clear." in html
    db.session.expire_all()
    assert db.session.get(SocialAccount, account.id).credentials_ciphertext is None


def test_unknown_credential_keys_are_ignored_by_the_form(client, db, login, make_account):
    account = make_account("youtube")
    login("admin")
    client.post(f"/accounts/{account.id}/credentials",
                data={"client_id": "cid-secret", "instagram_account_id": "not-for-youtube"})
    html = client.get(f"/accounts/{account.id}/credentials").get_data(as_text=True)
    assert '<span title="client_id">Client ID</span>' in html and "instagram_account_id" not in html


def test_remove_credentials(client, db, login, make_account):
    account = make_account("instagram")
    set_account_credentials(db, account.id, {"access_token": "to-be-removed-secret"})
    login("admin")
    html = client.get(f"/accounts/{account.id}/credentials").get_data(as_text=True)
    assert 'id="remove-credentials"' in html
    response = client.post(f"/accounts/{account.id}/credentials/remove", data={"confirm": "yes"},
                           follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "it now publishes through the simulator" in html
    assert 'id="credentials-mode">simulator<' in html and 'id="remove-credentials"' not in html
    db.session.expire_all()
    assert db.session.get(SocialAccount, account.id).credentials_ciphertext is None
    assert events(db, "account_credentials_removed") == 1


def test_credential_values_never_reach_any_page(client, db, login, family, make_clip):
    """Set credentials through the form, then look for the values in every page and fragment."""
    login("admin")
    main_id = family["main"].id
    responses = [client.post(f"/accounts/{main_id}/credentials", data=SECRETS, follow_redirects=True)]
    # and a rejected save, which re-renders the form
    responses.append(client.post(f"/accounts/{main_id}/credentials",
                                 data={"access_token": "  ", "instagram_account_id": ""}))
    for path in ("/", "/accounts/", "/accounts/new", f"/accounts/{main_id}/edit",
                 f"/accounts/{main_id}/credentials", "/tokens/", "/users/", "/users/new"):
        responses.append(client.get(path))
        responses.append(client.get(path, headers=HTMX))
    responses.append(client.post(f"/accounts/{main_id}/edit", data={"handle": "acme", "active": "y"},
                                 follow_redirects=True))
    assert all(r.status_code in (200, 400) for r in responses), [r.status_code for r in responses]
    for response in responses:
        body = response.get_data(as_text=True)
        for value in SECRETS.values():
            assert value not in body, f"{value} leaked into {response.request.path}"
    ledger = db.session.scalars(select(LedgerEvent.event_metadata)).all()
    assert all(value not in str(ledger) for value in SECRETS.values())


# --- CSRF ---------------------------------------------------------------------------------

class TestCsrfEnforced:
    @pytest.fixture
    def app_config(self, app_config):
        return {**app_config, "WTF_CSRF_ENABLED": True}

    def test_create_without_token_is_refused(self, client, db, login):
        login("admin")
        response = client.post("/accounts/new", data={"platform": "instagram", "handle": "acme"})
        assert response.status_code == 400
        assert "CSRF" in response.get_data(as_text=True)
        assert accounts(db) == []

    def test_create_with_token_works(self, client, db, login):
        login("admin")
        token = csrf_token_from(client.get("/accounts/new").get_data(as_text=True))
        response = client.post("/accounts/new", data={"platform": "instagram", "handle": "acme",
                                                      "csrf_token": token})
        assert response.status_code == 302 and len(accounts(db)) == 1

    def test_edit_without_token_is_refused(self, client, db, login, family):
        login("admin")
        response = client.post(f"/accounts/{family['main'].id}/edit", data={"handle": "renamed"})
        assert response.status_code == 400
        assert "renamed" not in [a.handle for a in accounts(db)]

    def test_credentials_without_token_are_refused(self, client, db, login, family):
        login("admin")
        response = client.post(f"/accounts/{family['main'].id}/credentials", data=SECRETS)
        assert response.status_code == 400
        db.session.expire_all()
        assert db.session.get(SocialAccount, family["main"].id).credentials_ciphertext is None

    def test_remove_without_token_is_refused(self, client, db, login, family):
        set_account_credentials(db, family["main"].id, {"access_token": "kept-secret"})
        login("admin")
        response = client.post(f"/accounts/{family['main'].id}/credentials/remove", data={"confirm": "yes"})
        assert response.status_code == 400
        db.session.expire_all()
        assert db.session.get(SocialAccount, family["main"].id).credentials_ciphertext is not None


# --- saving merges; stored keys are replaced or cleared one by one ---------------------------

def stored(app, db, account_id) -> dict:
    db.session.expire_all()
    with app.app_context():
        return get_account_credentials(db, account_id)


def test_saving_only_the_missing_key_keeps_the_stored_one(app, client, db, login, make_account):
    account = make_account("instagram", handle="acme")
    set_account_credentials(db, account.id, {"access_token": "saved-token-1"})
    login("admin")
    html = client.get(f"/accounts/{account.id}/credentials").get_data(as_text=True)
    assert 'id="credential-access_token" data-stored="true"' in html
    assert "Stored. Leave empty to keep it, or type a new value to replace it." in html
    response = client.post(f"/accounts/{account.id}/credentials",
                           data={"access_token": "", "instagram_account_id": "1784"})
    assert response.status_code == 302
    assert stored(app, db, account.id) == {"access_token": "saved-token-1", "instagram_account_id": "1784"}
    html = client.get(response.location).get_data(as_text=True)
    assert 'id="credentials-mode">provider ready<' in html
    assert "saved-token-1" not in html and "1784" not in html


def test_a_typed_value_replaces_only_its_key(app, client, db, login, make_account):
    account = make_account("tiktok")
    set_account_credentials(db, account.id, {"client_key": "ck", "client_secret": "cs", "access_token": "old"})
    login("admin")
    client.post(f"/accounts/{account.id}/credentials", data={"access_token": "new"})
    assert stored(app, db, account.id) == {"client_key": "ck", "client_secret": "cs", "access_token": "new"}


def test_a_ticked_key_is_cleared_and_the_rest_kept(app, client, db, login, make_account):
    account = make_account("youtube")
    set_account_credentials(db, account.id, {"client_id": "cid", "client_secret": "cs", "access_token": "at",
                                             "refresh_token": "rt"})
    login("admin")
    html = client.get(f"/accounts/{account.id}/credentials").get_data(as_text=True)
    assert '<label for="clear_refresh_token"><input id="clear_refresh_token" name="clear_refresh_token" ' \
           'type="checkbox" value="y"> Clear the stored Refresh token</label>' in html
    response = client.post(f"/accounts/{account.id}/credentials", data={"clear_refresh_token": "y"},
                           follow_redirects=True)
    assert "Saved the credentials of @" in response.get_data(as_text=True)
    assert ": Access token, Client ID, Client secret set; status provider ready." in response.get_data(as_text=True)
    assert stored(app, db, account.id) == {"client_id": "cid", "client_secret": "cs", "access_token": "at"}
    [event] = db.session.scalars(select(LedgerEvent.event_metadata).where(
        LedgerEvent.event_type == "account_credentials_set").order_by(LedgerEvent.created_at.desc()).limit(1))
    assert event["keys_cleared"] == ["refresh_token"] and "rt" not in str(event)


def test_typing_and_clearing_the_same_key_is_refused_inline(app, client, db, login, make_account):
    account = make_account("instagram")
    set_account_credentials(db, account.id, {"access_token": "keep-me"})
    login("admin")
    response = client.post(f"/accounts/{account.id}/credentials",
                           data={"access_token": "other", "clear_access_token": "y"})
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), "access_token") == \
        "Type a new value or clear the stored one, not both."
    assert stored(app, db, account.id) == {"access_token": "keep-me"}


def test_clearing_every_stored_key_forgets_the_credentials(app, client, db, login, make_account):
    account = make_account("instagram")
    set_account_credentials(db, account.id, {"access_token": "a"})
    login("admin")
    client.post(f"/accounts/{account.id}/credentials", data={"clear_access_token": "y"})
    assert stored(app, db, account.id) is None
    assert events(db, "account_credentials_removed") == 1


# --- destructive actions ask first -----------------------------------------------------------

def test_remove_credentials_asks_first(app, client, db, login, make_account):
    account = make_account("instagram", handle="acme")
    set_account_credentials(db, account.id, {"access_token": "to-keep"})
    login("admin")
    response = client.post(f"/accounts/{account.id}/credentials/remove")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<h1 id="confirm-question">Remove the credentials of @acme?</h1>' in html
    form = re.search(r'<form method="post" action="([^"]+)" id="confirm-form".*?</form>', html, re.S)
    assert form.group(1) == f"/accounts/{account.id}/credentials/remove"
    assert '<input type="hidden" name="confirm" value="yes">' in form.group(0)
    assert f'<a href="/accounts/{account.id}/credentials" id="confirm-keep"' in html
    assert stored(app, db, account.id) == {"access_token": "to-keep"}
    client.post(f"/accounts/{account.id}/credentials/remove", data={"confirm": "yes"})
    assert stored(app, db, account.id) is None


def test_disconnect_asks_first(client, db, login, family):
    account = family["main"]
    account.linked_at, account.connected_as = utcnow(), "Acme"
    db.session.commit()
    login("admin")
    html = client.post(f"/accounts/{account.id}/disconnect").get_data(as_text=True)
    assert '<h1 id="confirm-question">Disconnect @acme?</h1>' in html
    db.session.expire_all()
    assert db.session.get(SocialAccount, account.id).linked_at is not None
    assert events(db, "account_disconnected") == 0
