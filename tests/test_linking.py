"""Linking accounts by OAuth against faithful platform fakes over real HTTP: connect, the
refusals, refresh ahead of expiry (the clock moved), rotation under two concurrent workers,
invalid_grant -> needs reconnect, revocation, and no secret anywhere it could leak."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import httpx
import pytest
import time_machine
from flask import g
from linking_support import consent, flashes, path_and_query, query, running_platforms
from sqlalchemy import func, select

from dashboard import linking
from dashboard.credentials import get_account_credentials
from dashboard.errors import InvalidInput
from dashboard.models import LedgerEvent, SocialAccount, utcnow
from dashboard.publishing.models import PublishRequest
from dashboard.publishing.service import publish_clip

PLATFORMS = ["instagram", "tiktok", "youtube"]


@pytest.fixture
def platforms(app):
    with running_platforms() as fakes:
        app.config.update(fakes.settings)
        yield fakes


@pytest.fixture
def admin(login):
    return login("admin")


def accounts(db) -> list[SocialAccount]:
    db.session.expire_all()
    return list(db.session.scalars(select(SocialAccount).order_by(SocialAccount.handle)))


def event_count(db, event_type: str | None = None) -> int:
    query_ = select(func.count()).select_from(LedgerEvent)
    if event_type:
        query_ = query_.where(LedgerEvent.event_type == event_type)
    return db.session.scalar(query_)


def start(client, platform: str, **params) -> str:
    """Press Connect: the app's redirect to the platform's authorize URL."""
    response = client.get(f"/accounts/connect/{platform}", query_string=params)
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def finish(client, callback_url: str) -> str:
    """The browser arriving back at the app's callback; returns the accounts page it lands on."""
    response = client.get(path_and_query(callback_url))
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/accounts/")
    return client.get("/accounts/").get_data(as_text=True)


def connect(client, platform: str, **params) -> str:
    return finish(client, consent(start(client, platform, **params)))


# --- connecting -----------------------------------------------------------------------------

IDENTITY = {
    "instagram": ("17841400000000001", "acme.reels", "@acme.reels"),
    "tiktok": ("open-id-0001", "acme.tok", "Acme Tok (@acme.tok)"),
    "youtube": ("UCfakechannel00000000001", "acmeshorts", "Acme Shorts"),
}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_connect_creates_a_connected_account_whose_token_the_platform_accepts(
        client, db, admin, platforms, platform):
    authorize = start(client, platform)
    asked = query(authorize)
    assert asked["state"] and asked["redirect_uri"] == \
        f"http://localhost/accounts/connect/{platform}/callback"
    assert asked["scope"] == linking.APPS[platform].scope_separator.join(
        linking.APPS[platform].scopes)
    if platform == "youtube":  # PKCE S256 where documented, offline access for a refresh token
        assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
        assert asked["access_type"] == "offline" and asked["prompt"] == "consent"
    else:
        assert "code_challenge" not in asked
    assert ("client_key" if platform == "tiktok" else "client_id") in asked

    page = finish(client, consent(authorize))

    external_id, handle, connected_as = IDENTITY[platform]
    [account] = accounts(db)
    assert (account.platform, account.handle, account.external_id, account.connected_as) == \
        (platform, handle, external_id, connected_as)
    assert account.is_main and account.linked_at is not None and not account.needs_reconnect
    lifetime = account.token_expires_at - utcnow()
    expected = {"instagram": 60 * 86400, "tiktok": 2 * 3600, "youtube": 3600}[platform]
    assert expected - 60 < lifetime.total_seconds() <= expected
    stored = get_account_credentials(db, account.id)
    assert platforms.book.check(stored["access_token"])
    assert linking.missing_scopes(account) == []
    assert f"Connected {linking.PLATFORM_NAMES[platform]} account @{handle}" in " ".join(
        flashes(page))
    assert f"Connected as {connected_as}".replace("@", "@") in page.replace("&#64;", "@")
    assert event_count(db, "account_linked") == 1
    for secret in platforms.issued_secrets():
        assert secret not in page


def test_connecting_the_same_identity_again_updates_the_account(client, db, admin, platforms):
    connect(client, "tiktok")
    [first] = accounts(db)
    old_token = get_account_credentials(db, first.id)["access_token"]
    page = connect(client, "tiktok")
    [again] = accounts(db)
    assert again.id == first.id
    assert get_account_credentials(db, again.id)["access_token"] != old_token
    assert "Reconnected TikTok account @acme.tok" in " ".join(flashes(page))


def test_connect_as_a_satellite_of_the_chosen_main_account(client, db, admin, platforms,
                                                          make_account):
    main = make_account("youtube", handle="acme.main")
    connect(client, "youtube", parent=str(main.id))
    satellite = next(a for a in accounts(db) if a.handle == "acmeshorts")
    assert satellite.parent_account_id == main.id


def test_an_account_added_by_hand_is_linked_rather_than_duplicated(client, db, admin, platforms,
                                                                   make_account):
    by_hand = make_account("instagram", handle="acme.reels")
    connect(client, "instagram")
    [account] = accounts(db)
    assert account.id == by_hand.id and account.external_id == "17841400000000001"
    assert get_account_credentials(db, account.id)["instagram_account_id"] == "17841400000000001"


def test_the_page_shows_redirect_uris_and_how_to_add_missing_app_credentials(client, admin,
                                                                            app, platforms):
    app.config["TIKTOK_CLIENT_SECRET"] = ""
    page = client.get("/accounts/").get_data(as_text=True)
    assert 'id="connect-instagram"' in page and 'id="connect-youtube"' in page
    assert 'id="connect-tiktok"' not in page
    assert "<code>TIKTOK_CLIENT_KEY</code> and <code>TIKTOK_CLIENT_SECRET</code>" in page
    for platform in PLATFORMS:
        assert f"http://localhost/accounts/connect/{platform}/callback" in page
    assert "Instagram documents no token revocation" in page
    refused = client.get("/accounts/connect/tiktok", follow_redirects=True)
    assert "TikTok has no app credentials" in " ".join(flashes(refused.get_data(as_text=True)))


def test_connect_is_for_admins(client, login, platforms):
    login("editor")
    assert client.get("/accounts/connect/tiktok").status_code == 403
    assert client.get("/accounts/connect/tiktok/callback?code=x&state=y").status_code == 403


# --- refusals: each changes nothing ---------------------------------------------------------

@pytest.fixture
def unchanged(db):
    """Asserts, after the test body, that no account and no ledger event was added."""
    def snapshot():
        db.session.expire_all()
        return (db.session.scalar(select(func.count()).select_from(SocialAccount)),
                event_count(db))
    before = {}

    def check():
        assert snapshot() == before["value"]

    def arm():
        before["value"] = snapshot()
    return arm, check


def test_a_state_mismatch_is_refused(client, db, admin, platforms, unchanged):
    arm, check = unchanged
    arm()
    callback = consent(start(client, "tiktok"))
    forged = callback.replace(f"state={query(callback)['state']}", "state=forged-state")
    page = finish(client, forged)
    assert "state mismatch" in " ".join(flashes(page))
    check()
    assert platforms.tiktok_oauth.calls["/v2/oauth/token/"] == 0  # refused before any exchange


def test_a_denied_consent_is_refused(client, db, admin, platforms, unchanged):
    arm, check = unchanged
    arm()
    callback = consent(start(client, "instagram"), decision="deny")
    assert query(callback)["error"] == "access_denied"
    page = finish(client, callback)
    assert "Instagram consent was not given (access_denied" in " ".join(flashes(page))
    check()


def test_a_reused_code_is_refused_with_the_platforms_invalid_grant(client, db, admin, platforms,
                                                                   unchanged):
    callback = consent(start(client, "youtube"))
    finish(client, callback)
    arm, check = unchanged
    arm()
    # The same code again, with a fresh state of this session: the platform refuses the code.
    new_state = query(start(client, "youtube"))["state"]
    replay = callback.replace(f"state={query(callback)['state']}", f"state={new_state}")
    page = finish(client, replay)
    assert "YouTube refused the authorization code (invalid_grant" in " ".join(flashes(page))
    check()


def test_a_callback_for_another_users_state_is_refused(client, db, admin, make_user, app,
                                                       platforms, unchanged, sign_in_as):
    arm, check = unchanged
    callback = consent(start(client, "tiktok"))  # started by `admin` in `client`'s session
    other = app.test_client()
    intruder = make_user("admin")
    sign_in_as(other, intruder.id)
    arm()
    g.pop("_login_user", None)  # the test's app context outlives requests: forget who signed in
    page = finish(other, callback)
    assert "was not started from this session" in " ".join(flashes(page))
    check()
    # The same browser, now signed in as someone else, may not finish it either.
    sign_in_as(client, intruder.id)
    g.pop("_login_user", None)
    page = finish(client, callback)
    assert "started by another user" in " ".join(flashes(page))
    check()


def test_a_second_answer_to_the_same_connection_is_refused(client, db, admin, platforms):
    callback = consent(start(client, "tiktok"))
    finish(client, callback)
    events = event_count(db)
    page = finish(client, callback)
    assert "already finished" in " ".join(flashes(page))
    assert event_count(db) == events


# --- token lifecycle ------------------------------------------------------------------------

def _linked(client, db, platform: str) -> SocialAccount:
    connect(client, platform)
    return next(a for a in accounts(db) if a.platform == platform)


def test_the_worker_refreshes_ahead_of_expiry_and_saves_the_rotated_refresh_token(
        client, db, admin, platforms):
    account = _linked(client, db, "tiktok")
    before = get_account_credentials(db, account.id)
    assert linking.refresh_due(db) == {}  # two hours left: not due
    with time_machine.travel(utcnow() + timedelta(hours=1, minutes=50), tick=True):
        assert linking.refresh_due(db) == {"refreshed": 1}
        after = get_account_credentials(db, account.id)
        assert after["refresh_token"] != before["refresh_token"]
        assert not platforms.book.valid(before["refresh_token"], "refresh")  # rotated away
        assert platforms.book.valid(after["refresh_token"], "refresh")
        assert platforms.book.check(after["access_token"])
        db.session.expire_all()
        account = db.session.get(SocialAccount, account.id)
        assert account.token_expires_at - utcnow() > timedelta(hours=1, minutes=59)
        assert account.token_refresh_lease_until is None
        # The platform API accepts the new token (creator_info, as the TikTok client calls it).
        answer = httpx.post(f"{platforms.settings['TIKTOK_API_URL']}"
                            "/v2/post/publish/creator_info/query/",
                            headers={"Authorization": f"Bearer {after['access_token']}"})
        assert answer.json()["error"]["code"] == "ok"
    [event] = db.session.scalars(select(LedgerEvent).where(
        LedgerEvent.event_type == "account_token_refreshed"))
    assert event.event_metadata["refresh_rotated"] is True


@pytest.mark.parametrize("platform", ["youtube", "tiktok"])
def test_a_token_past_its_lifetime_is_refreshed_before_use(client, db, admin, platforms,
                                                          platform):
    account = _linked(client, db, platform)
    old = get_account_credentials(db, account.id)["access_token"]
    with time_machine.travel(utcnow() + timedelta(hours=5), tick=True):  # no worker ran
        assert not platforms.book.check(old)
        fresh = linking.fresh_credentials(db, account.id)
        assert fresh["access_token"] != old and platforms.book.check(fresh["access_token"])


def test_instagram_long_lived_tokens_are_refreshed_well_before_60_days(client, db, admin,
                                                                       platforms):
    account = _linked(client, db, "instagram")
    old = get_account_credentials(db, account.id)["access_token"]
    with time_machine.travel(utcnow() + timedelta(days=40), tick=True):
        assert linking.refresh_due(db) == {}
    with time_machine.travel(utcnow() + timedelta(days=47), tick=True):
        assert linking.refresh_due(db) == {"refreshed": 1}
        new = get_account_credentials(db, account.id)["access_token"]
        assert new != old and platforms.book.check(new)
        db.session.expire_all()
        expires = db.session.get(SocialAccount, account.id).token_expires_at
        assert expires - utcnow() > timedelta(days=59)


def test_two_concurrent_workers_refresh_once_and_lose_nothing(app, client, db, admin, platforms):
    account = _linked(client, db, "tiktok")
    account_id = account.id
    db.session.commit()  # the test's own session holds no lock while the workers run
    outcomes = []
    barrier = threading.Barrier(2)

    def worker():
        with app.app_context():
            barrier.wait()
            outcomes.append(linking.refresh_account(db, account_id, force=True))
            db.session.remove()

    with time_machine.travel(utcnow() + timedelta(hours=1, minutes=55), tick=True):
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(outcomes) == ["busy", "refreshed"]
        assert platforms.tiktok_oauth.refreshes == 1
        db.session.expire_all()
        stored = get_account_credentials(db, account_id)
        assert platforms.book.valid(stored["refresh_token"], "refresh")
        assert platforms.book.check(stored["access_token"])
        # And the next refresh works with what was saved.
        assert linking.refresh_account(db, account_id, force=True) == "refreshed"


def test_a_publish_waits_for_another_workers_refresh_and_uses_its_token(app, client, db, admin,
                                                                        platforms):
    account = _linked(client, db, "tiktok")
    account_id = account.id
    old = get_account_credentials(db, account_id)["access_token"]
    db.session.commit()
    platforms.tiktok_oauth.token_delay = 1.0  # the other worker's refresh takes a second
    outcome = []

    def other_worker():
        with app.app_context():
            outcome.append(linking.refresh_account(db, account_id))
            db.session.remove()

    lease = select(SocialAccount.token_refresh_lease_until).where(SocialAccount.id == account_id)
    with time_machine.travel(utcnow() + timedelta(hours=1, minutes=55), tick=True):
        thread = threading.Thread(target=other_worker)
        thread.start()
        while db.session.scalar(lease) is None and thread.is_alive():  # until it holds the claim
            db.session.commit()
        fresh = linking.fresh_credentials(db, account_id)
        thread.join(timeout=30)
    assert outcome == ["refreshed"]
    assert platforms.tiktok_oauth.refreshes == 1  # the publish did not refresh a second time
    assert fresh["access_token"] != old
    assert fresh == get_account_credentials(db, account_id)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_refused_refresh_marks_needs_reconnect_and_publishing_is_refused_before_any_call(
        client, db, admin, platforms, platform, make_clip):
    account = _linked(client, db, platform)
    platforms.book.revoke_subject(platform, IDENTITY[platform][0])  # the person removed the app
    assert linking.refresh_account(db, account.id, force=True) == "needs_reconnect"
    db.session.expire_all()
    account = db.session.get(SocialAccount, account.id)
    assert account.needs_reconnect
    expected = {"instagram": "code 190", "tiktok": "invalid_grant", "youtube": "invalid_grant"}
    assert expected[platform] in account.needs_reconnect_reason
    assert event_count(db, "account_needs_reconnect") == 1
    clip = make_clip()
    calls_before = sum(platforms.oauth(platform).calls.values())
    with pytest.raises(InvalidInput) as refused:
        publish_clip(db, PublishRequest(clip_id=clip.id, platform=platform,
                                        social_account_id=account.id))
    assert "must be reconnected" in str(refused.value)
    assert sum(platforms.oauth(platform).calls.values()) == calls_before
    page = client.get("/accounts/").get_data(as_text=True)
    assert "needs reconnect" in page and "reconnect-account" in page
    # Reconnecting clears it.
    connect(client, platform, account=str(account.id))
    db.session.expire_all()
    assert not db.session.get(SocialAccount, account.id).needs_reconnect


def test_a_refresh_that_loses_a_scope_asks_for_reconnecting(client, db, admin, platforms):
    account = _linked(client, db, "tiktok")
    platforms.book.drop_scope("tiktok", "open-id-0001", "video.publish")
    assert linking.refresh_account(db, account.id, force=True) == "needs_reconnect"
    page = client.get("/accounts/").get_data(as_text=True)
    assert "missing scopes: video.publish" in page
    db.session.expire_all()
    assert "video.publish" in db.session.get(SocialAccount, account.id).needs_reconnect_reason


@pytest.mark.parametrize("platform", ["tiktok", "youtube"])
def test_disconnect_revokes_at_the_platform_then_forgets(client, db, admin, platforms, platform):
    account = _linked(client, db, platform)
    tokens = get_account_credentials(db, account.id)
    response = client.post(f"/accounts/{account.id}/disconnect", data={"confirm": "yes"}, follow_redirects=True)
    assert "confirmed the token is revoked" in " ".join(flashes(response.get_data(as_text=True)))
    assert not platforms.book.check(tokens["access_token"])
    assert not platforms.book.valid(tokens["refresh_token"], "refresh")
    db.session.expire_all()
    account = db.session.get(SocialAccount, account.id)
    assert account.credentials_ciphertext is None and account.linked_at is None


def test_disconnecting_instagram_forgets_the_token_and_says_there_is_no_revocation(
        client, db, admin, platforms):
    account = _linked(client, db, "instagram")
    calls = sum(platforms.facebook.calls.values())
    response = client.post(f"/accounts/{account.id}/disconnect", data={"confirm": "yes"}, follow_redirects=True)
    assert "Instagram offers no revocation" in " ".join(flashes(response.get_data(as_text=True)))
    assert sum(platforms.facebook.calls.values()) == calls
    db.session.expire_all()
    assert db.session.get(SocialAccount, account.id).credentials_ciphertext is None


def test_no_code_or_token_reaches_a_page_a_log_line_the_ledger_or_an_error(
        client, db, admin, platforms, caplog, make_clip, api_headers):
    caplog.set_level(logging.DEBUG)
    pages = [connect(client, platform) for platform in PLATFORMS]
    tiktok = next(a for a in accounts(db) if a.platform == "tiktok")
    youtube = next(a for a in accounts(db) if a.platform == "youtube")
    linking.refresh_account(db, tiktok.id, force=True)
    platforms.book.revoke_subject("youtube", IDENTITY["youtube"][0])
    linking.refresh_account(db, youtube.id, force=True)
    # A reused code refused, and a denied consent.
    callback = consent(start(client, "instagram"))
    finish(client, callback)
    replay_state = query(start(client, "instagram"))["state"]
    pages.append(finish(client, callback.replace(f"state={query(callback)['state']}",
                                                  f"state={replay_state}")))
    errors = []
    try:
        publish_clip(db, PublishRequest(clip_id=make_clip().id, platform="youtube",
                                        social_account_id=youtube.id))
    except InvalidInput as exc:
        errors.append(str(exc))
    pages.append(client.get("/accounts/").get_data(as_text=True))
    pages.append(client.get("/").get_data(as_text=True))
    api = client.get("/api/accounts", headers=api_headers("viewer"))
    assert api.status_code == 200
    pages.append(api.get_data(as_text=True))
    ledger = " ".join(str(e.event_metadata) for e in db.session.scalars(select(LedgerEvent)))
    exposed = " ".join(pages + errors + [ledger, caplog.text])
    secrets = platforms.issued_secrets() + ["ig-app-secret", "tt-client-secret", "g-client-secret"]
    assert len(secrets) > 10
    assert [s for s in secrets if s in exposed] == []


# --- where a person is told ----------------------------------------------------------------

def test_home_lists_accounts_needing_attention(client, db, admin, platforms):
    account = _linked(client, db, "youtube")
    assert 'id="attention"' not in client.get("/").get_data(as_text=True)
    platforms.book.revoke_subject("youtube", IDENTITY["youtube"][0])
    linking.refresh_account(db, account.id, force=True)
    home = client.get("/").get_data(as_text=True)
    assert f'id="attention-{account.id}"' in home
    assert "needs reconnecting: YouTube refused the token refresh: invalid_grant" in home
    assert f"/accounts/connect/youtube?account={account.id}" in home


def test_the_schedule_warns_on_a_post_due_after_its_accounts_authorization_ends(
        client, db, admin, platforms, make_clip):
    from dashboard.publishing import background

    account = _linked(client, db, "tiktok")
    soon, late = utcnow() + timedelta(days=2), utcnow() + timedelta(days=200)  # refresh: 180 d
    for at in (soon, late):
        background.schedule_publish(db, make_clip().id,
                                    background.Target("tiktok", account.id, "", []), at)
    def week_of(day):
        monday = (day - timedelta(days=day.weekday())).date()
        return client.get(f"/schedule?week={monday.isoformat()}").get_data(as_text=True)
    near = week_of(soon)
    assert 'class="scheduled-post"' in near and "reconnect-warning" not in near
    assert "authorization ends before this post&#39;s time" in week_of(late)


def test_the_worker_task_refreshes_due_tokens(app, client, db, admin, platforms):
    account = _linked(client, db, "youtube")
    old = get_account_credentials(db, account.id)["access_token"]
    db.session.commit()
    with time_machine.travel(utcnow() + timedelta(minutes=50), tick=True):
        app.extensions["publish_tasks"].refresh_tokens.call_local()
        db.session.expire_all()
        assert get_account_credentials(db, account.id)["access_token"] != old


def _publish_live(platform: str, credentials: dict, settings: dict, tmp_path) -> object:
    """One live attempt through the platform's real client, its steps run in turn (the
    pipeline in miniature); returns the final outcome."""
    from dashboard.publishing.providers import LIVE_CLIENTS
    from dashboard.publishing.providers.base import LiveJob, MediaSource

    media = tmp_path / "clip.mp4"
    media.write_bytes(b"\0" * 300_000)
    job = LiveJob(platform=platform, log_id="log-1", title="Launch teaser", description="",
                  caption="New drop #launch", hashtags=("launch",),
                  media=MediaSource(path=str(media)), duration_seconds=30.0,
                  account_handle="acme", credentials=credentials,
                  options={"privacy_level": "SELF_ONLY"})
    state: dict = {}
    step, result = "prepare", None
    for _ in range(50):
        if step is None:
            break
        with httpx.Client() as http:
            client = LIVE_CLIENTS[platform](credentials, settings, http)
            result = client.run_step(step, job, state, state.update)
        state.clear()
        state.update(result.state)
        step = result.next_step
    return result.outcome


@pytest.mark.parametrize("platform", PLATFORMS)
def test_linked_accounts_still_publish_after_every_access_token_lifetime(
        app, client, db, admin, platforms, platform, tmp_path):
    account = _linked(client, db, platform)
    settings = dict(app.config, TIKTOK_POLL_INTERVAL_SECONDS=0.0, YOUTUBE_CHUNK_BYTES=262144,
                    YOUTUBE_PROCESSING_POLL_SECONDS=0.0, YOUTUBE_RETRY_BASE_DELAY=0.0)
    # Past TikTok's 2 h and YouTube's 1 h access tokens, and into Instagram's refresh window.
    later = timedelta(days=50) if platform == "instagram" else timedelta(hours=30)
    with time_machine.travel(utcnow() + later, tick=True):
        old = get_account_credentials(db, account.id)
        if platform != "instagram":  # every short-lived access token has expired
            assert not platforms.book.check(old["access_token"])
        outcome = _publish_live(platform, linking.fresh_credentials(db, account.id), settings,
                                tmp_path)
        assert outcome.success, outcome.error_message
        assert linking.fresh_credentials(db, account.id)["access_token"] != old["access_token"]


def test_a_connected_handle_taken_by_another_linked_account_is_refused(client, db, admin,
                                                                       platforms, make_account):
    make_account("tiktok", handle="acme.tok", external_id="some-other-open-id",
                 linked_at=utcnow())
    page = connect(client, "tiktok")
    assert "already @acme.tok: nothing changed" in " ".join(flashes(page))
    assert [a.external_id for a in accounts(db)] == ["some-other-open-id"]


def test_a_consent_without_the_publishing_scope_links_but_asks_for_reconnecting(
        client, db, admin, platforms, make_clip):
    page = finish(client, consent(start(client, "tiktok"), granted_scope="user.info.basic"))
    [account] = accounts(db)
    assert account.needs_reconnect
    assert account.needs_reconnect_reason == "the consent did not grant video.publish"
    assert "missing scopes: video.publish" in page
    with pytest.raises(InvalidInput):
        publish_clip(db, PublishRequest(clip_id=make_clip().id, platform="tiktok",
                                        social_account_id=account.id))


def test_tokens_entered_by_hand_replace_the_link_and_are_not_refreshed(client, db, admin,
                                                                      platforms):
    from dashboard.credentials import set_account_credentials

    account = _linked(client, db, "tiktok")
    set_account_credentials(db, account.id, {"client_key": "k", "client_secret": "s",
                                             "access_token": "act.typed-by-hand"})
    db.session.expire_all()
    account = db.session.get(SocialAccount, account.id)
    assert account.linked_at is None and account.token_expires_at is None
    with time_machine.travel(utcnow() + timedelta(days=2), tick=True):
        assert linking.refresh_due(db) == {}
    assert "not connected" in client.get("/accounts/").get_data(as_text=True)


def test_the_api_shows_how_a_linked_account_stands_and_never_a_token(client, db, admin,
                                                                    platforms, api_headers):
    account = _linked(client, db, "youtube")
    body = client.get("/api/accounts", headers=api_headers("viewer")).get_json()
    [shown] = body["items"]
    assert shown["connection"]["connected_as"] == "Acme Shorts"
    assert shown["connection"]["external_id"] == "UCfakechannel00000000001"
    assert shown["connection"]["missing_scopes"] == []
    assert shown["connection"]["token_expires_at"].endswith("Z")
    assert shown["connection"]["needs_reconnect"] is False
    assert shown["credentials"] == "complete"
    text = str(body)
    assert [s for s in platforms.issued_secrets() if s in text] == []
    assert account.id is not None


_REFRESH_IN_A_PROCESS = """
import json, sys, time, uuid
from dashboard import create_app
from dashboard import linking
from dashboard.extensions import db
config, account_id, start_at = json.loads(sys.argv[1]), sys.argv[2], float(sys.argv[3])
app = create_app(config)
with app.app_context():
    db.session.get(linking.SocialAccount, uuid.UUID(account_id))  # connect before the start
    db.session.commit()
    time.sleep(max(start_at - time.time(), 0))
    late = time.time() - start_at
    print(linking.refresh_account(db, uuid.UUID(account_id), force=True), round(late, 2))
"""


@pytest.mark.slow  # two `flask worker` processes
def test_two_worker_processes_refresh_once_and_lose_nothing(app, client, db, admin, platforms):
    import json
    import subprocess
    import sys
    import time

    account = _linked(client, db, "tiktok")
    account_id = str(account.id)
    db.session.commit()
    keys = ("SQLALCHEMY_DATABASE_URI", "CREDENTIALS_KEYS", "SECRET_KEY", "QUEUE_URL",
            "PROVIDER_HTTP_TIMEOUT", "TOKEN_REFRESH_LEASE_SECONDS", *platforms.settings)
    config = {key: app.config[key] for key in keys}
    platforms.tiktok_oauth.token_delay = 4.0  # each refresh takes 4 s: the calls overlap
    start_at = time.time() + 10  # both processes call at this instant (after starting up)
    processes = [subprocess.Popen([sys.executable, "-c", _REFRESH_IN_A_PROCESS, json.dumps(config),
                                   account_id, str(start_at)], stdout=subprocess.PIPE, text=True)
                 for _ in range(2)]
    answers = [p.communicate(timeout=60)[0].split() for p in processes]
    # Both called within the other's 4-second refresh: they really overlapped.
    assert abs(float(answers[0][1]) - float(answers[1][1])) < 3.0, answers
    assert sorted(outcome for outcome, _ in answers) == ["busy", "refreshed"]
    assert platforms.tiktok_oauth.refreshes == 1
    db.session.expire_all()
    stored = get_account_credentials(db, account.id)
    assert platforms.book.valid(stored["refresh_token"], "refresh")
    assert platforms.book.check(stored["access_token"])
