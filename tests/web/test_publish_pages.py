"""The clip page's publish panel: htmx publish, result in place, Retry, errors inline, roles, CSRF."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import func, select

from dashboard.models import LedgerEvent, PublishLog

from page_support import field_error

HTMX = {"HX-Request": "true"}


@pytest.fixture
def app_config(app_config, request):
    """The conftest settings, changed by `@pytest.mark.parametrize("app_config", [...], indirect=True)`."""
    return {**app_config, **getattr(request, "param", {})}


ALWAYS_FAIL = pytest.mark.parametrize("app_config", [{"SIMULATOR_FAILURE_RATE": 1.0}], indirect=True)
CSRF_ON = pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}], indirect=True)


def csrf_token_from(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def logs(db) -> list[PublishLog]:
    db.session.expire_all()
    return list(db.session.scalars(select(PublishLog).order_by(PublishLog.requested_at)))


def event_count(db) -> int:
    """Publish events in the ledger (signing in a test user records user_created)."""
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(LedgerEvent)
                             .where(LedgerEvent.event_type.like("publish%")))


def publish(client, clip, headers=HTMX, **data):
    """POST the publish form of `clip` (a Clip, or anything with an id).

    A publish closes the session the test shares with the request (the engine releases its
    connection before the platform call), so tests keep ids, not ORM objects, across it.
    """
    values = {"platform": "instagram", "social_account_id": "", "caption": "Hello", "hashtags": ""}
    values.update(data)
    return client.post(f"/clips/{clip.id}/publish", data=values, headers=headers)


# Roles ----------------------------------------------------------------------------------------

def test_the_panel_is_for_editors(client, login, make_clip):
    clip = make_clip()
    login("editor")
    html = client.get(f"/clips/{clip.id}").get_data(as_text=True)
    form = re.search(r'<form id="publish-form".*?>', html, re.S).group(0)
    assert f'hx-post="/clips/{clip.id}/publish"' in form
    assert 'hx-target="#publish-result"' in form
    assert 'hx-indicator="#publish-spinner"' in form
    assert 'hx-disabled-elt="#publish-button, #retry-button"' in form
    assert re.search(r'<div id="publish-result" class="publish-result" aria-live="polite" tabindex="-1">', html)
    assert ('<button type="submit" id="publish-button"><span class="when-now">Publish</span>'
            '<span class="when-later">Schedule</span></button>') in html
    for field_id in ("platform", "social_account_id", "caption", "hashtags"):
        assert f'<label for="{field_id}">' in html
    assert 'id="publish-spinner" class="htmx-indicator"' in html


def test_viewer_gets_no_panel_and_a_403(client, db, login, make_clip):
    clip = make_clip()
    login("viewer")
    assert 'id="publish-form"' not in client.get(f"/clips/{clip.id}").get_data(as_text=True)
    assert publish(client, clip).status_code == 403
    assert logs(db) == []


def test_anonymous_is_sent_to_sign_in(client, db, make_clip):
    clip = make_clip()
    response = publish(client, clip)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert logs(db) == []


# Success and failure ----------------------------------------------------------------------------

def test_publish_shows_the_link_and_post_id_in_place(client, db, login, make_clip):
    login("editor")
    clip = make_clip()
    response = publish(client, clip, caption="Spring is here", hashtags="#spring, launch,  sale")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in html
    [log] = logs(db)
    assert log.status == "success" and log.hashtags == ["spring", "launch", "sale"]
    assert f'<a id="publish-url" href="{log.external_url}"' in html
    assert f'<code id="publish-post-id">{log.external_post_id}</code>' in html
    assert log.external_url.startswith("https://www.instagram.com/reel/")
    # The clip's history below refreshes out of band, with the new attempt in it.
    assert '<section id="clip-history" aria-labelledby="clip-history-heading" hx-swap-oob="true">' in html
    assert f'data-log-id="{log.id}"' in html
    assert "HX-Request" in response.headers["Vary"]


def test_publish_through_a_satellite_account(client, db, login, make_clip, make_account):
    login("editor")
    clip = make_clip()
    main = make_account("tiktok", "acme")
    satellite_id = make_account("tiktok", "acme.clips", parent_account_id=main.id).id
    html = publish(client, clip, platform="tiktok", social_account_id=str(satellite_id)).get_data(as_text=True)
    [log] = logs(db)
    assert log.social_account_id == satellite_id and log.status == "success"
    assert 'id="publish-success"' in html
    assert "@acme.clips" in html  # in the refreshed history


@ALWAYS_FAIL
def test_a_platform_failure_shows_its_message_and_a_retry_of_that_attempt(client, db, login, make_clip,
                                                                          make_account):
    login("editor")
    clip_id, account_id = make_clip().id, make_account("instagram").id
    response = publish(client, type("C", (), {"id": clip_id}), social_account_id=str(account_id),
                       caption="Take two", hashtags="one, two")
    html = response.get_data(as_text=True)
    assert response.status_code == 200  # a platform failure is not an HTTP error
    [log] = logs(db)
    assert log.status == "failed" and log.error_message
    assert f'<span id="publish-error">{log.error_message}' in html.replace("&#39;", "'")
    retry = re.search(r'<form id="retry-form".*?</form>', html, re.S).group(0)
    # Retry names the failed attempt (the one retry service), not the form's values again.
    assert f'hx-post="/clips/{clip_id}/attempts/{log.id}/retry"' in retry
    assert f'action="/clips/{clip_id}/attempts/{log.id}/retry"' in retry
    assert '<button type="submit" id="retry-button"' in retry
    assert re.findall(r'<input type="hidden" name="(\w+)"', retry) == ["csrf_token"]


def test_without_htmx_the_whole_page_comes_back_with_the_result(client, db, login, make_clip):
    login("editor")
    clip = make_clip()
    response = publish(client, clip, headers={})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in html
    [log] = logs(db)
    assert f'id="publish-url" href="{log.external_url}"' in html
    assert "Sign out" in html  # the signed-in user is still readable after the publish


# Invalid input: 200, the form again with the message next to the field, nothing written ---------

def assert_refused(response, db):
    assert response.status_code == 200
    assert response.headers["HX-Retarget"] == "#publish-form"
    assert response.headers["HX-Reswap"] == "outerHTML"
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith("<form id=\"publish-form\"") or '<form id="publish-form"' in html
    assert '<div id="publish-result" hx-swap-oob="innerHTML">' in html
    assert "Not published" in html
    assert logs(db) == []
    assert event_count(db) == 0
    return html


def test_caption_too_long_for_instagram(client, db, login, make_clip):
    login("editor")
    clip = make_clip()
    before = event_count(db)
    response = publish(client, clip, caption="x" * 2201)
    assert before == 0
    html = assert_refused(response, db)
    assert "Instagram allows at most 2200" in field_error(html, "caption")
    assert re.search(r'<textarea[^>]*aria-invalid="true"[^>]*id="caption"', html)
    assert re.search(r'<textarea[^>]*autofocus[^>]*id="caption"', html)
    assert "x" * 2201 in html  # the caption is kept for correction


def test_the_same_caption_fits_tiktok(client, db, login, make_clip):
    login("editor")
    clip = make_clip()
    html = publish(client, clip, platform="tiktok", caption="x" * 2200).get_data(as_text=True)
    assert 'id="publish-success"' in html
    assert len(logs(db)) == 1


def test_account_of_another_platform(client, db, login, make_clip, make_account):
    login("editor")
    clip = make_clip()
    account = make_account("tiktok", "acme")
    html = assert_refused(publish(client, clip, platform="instagram", social_account_id=str(account.id)), db)
    assert "@acme is a TikTok account, not Instagram" in field_error(html, "social_account_id")


def test_inactive_account(client, db, login, make_clip, make_account):
    login("editor")
    clip = make_clip()
    account = make_account("instagram", "sleepy", active=False)
    html = assert_refused(publish(client, clip, social_account_id=str(account.id)), db)
    assert "@sleepy is inactive" in field_error(html, "social_account_id")


def test_unknown_account(client, db, login, make_clip):
    login("editor")
    clip = make_clip()
    html = assert_refused(publish(client, clip, social_account_id=str(uuid.uuid4())), db)
    assert "no longer exists" in field_error(html, "social_account_id")
    html = assert_refused(publish(client, clip, social_account_id="not-an-id"), db)
    assert "choose an account from the list" in field_error(html, "social_account_id")


def test_unknown_clip(client, db, login, make_clip):
    login("editor")
    make_clip()
    ghost = type("Ghost", (), {"id": uuid.uuid4()})
    html = assert_refused(publish(client, ghost), db)
    assert re.search(r'id="publish-form-errors"[^>]*role="alert"', html)
    assert "This clip no longer exists" in html


def test_too_many_hashtags_and_run_together_hashtags(client, db, login, make_clip):
    login("editor")
    clip = make_clip()
    tags = ", ".join(f"tag{i}" for i in range(31))
    html = assert_refused(publish(client, clip, hashtags=tags), db)
    assert "The post has 31 hashtags; Instagram allows at most 30." in field_error(html, "hashtags")
    html = assert_refused(publish(client, clip, hashtags="#spring#sale"), db)
    assert "is not one hashtag" in field_error(html, "hashtags")


def test_clip_too_long_for_youtube_is_shown_above_the_form(client, db, login, make_clip):
    login("editor")
    clip = make_clip(duration_seconds=600.0)
    html = assert_refused(publish(client, clip, platform="youtube"), db)
    errors = re.search(r'<div id="publish-form-errors".*?</div>', html, re.S).group(0)
    assert "The clip lasts 600 s; YouTube allows at most 180 s." in errors


def test_unknown_platform(client, db, login, make_clip):
    login("editor")
    clip = make_clip()
    html = assert_refused(publish(client, clip, platform="myspace"), db)
    assert "Not a valid choice" in field_error(html, "platform")


def test_without_htmx_errors_come_back_in_the_whole_page(client, db, login, make_clip):
    login("editor")
    clip = make_clip()
    response = publish(client, clip, headers={}, caption="x" * 2201)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in html
    assert "Instagram allows at most 2200" in field_error(html, "caption")
    assert logs(db) == []


# Account options ------------------------------------------------------------------------------

def test_account_options_follow_the_platform(client, login, make_account):
    login("editor")
    main = make_account("tiktok", "acme", display_name="Acme")
    make_account("tiktok", "acme.clips", parent_account_id=main.id)
    make_account("tiktok", "old", active=False)
    make_account("instagram", "insta")
    response = client.get("/clips/accounts-options?platform=tiktok", headers=HTMX)
    html = response.get_data(as_text=True)
    options = re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', html)
    labels = [label for _, label in options]
    assert labels[0] == "No account (simulator)" and options[0][0] == ""
    assert labels[1] == "@acme \u2014 Acme"
    assert labels[2] == "\u21b3 @acme.clips (satellite of @acme)"
    assert len(options) == 3  # not the inactive one, not instagram's
    assert "<html" not in html and "HX-Request" in response.headers["Vary"]

    nothing = client.get("/clips/accounts-options?platform=myspace").get_data(as_text=True)
    assert re.findall(r"<option", nothing) == ["<option"]


def test_the_platform_select_refetches_the_accounts(client, login, make_clip):
    login("editor")
    clip = make_clip()
    html = client.get(f"/clips/{clip.id}").get_data(as_text=True)
    select_tag = re.search(r'<select[^>]*id="platform"[^>]*>', html).group(0)
    assert 'hx-get="/clips/accounts-options"' in select_tag
    assert 'hx-target="#social_account_id"' in select_tag
    assert 'hx-trigger="change"' in select_tag


# CSRF ------------------------------------------------------------------------------------------

@CSRF_ON
def test_csrf_is_enforced_on_publish(client, db, login, make_clip):
    login("editor")
    clip = make_clip()
    assert publish(client, clip).status_code == 400
    assert publish(client, clip, headers={**HTMX, "X-CSRFToken": "forged"}).status_code == 400
    assert logs(db) == [] and event_count(db) == 0

    token = csrf_token_from(client.get(f"/clips/{clip.id}").get_data(as_text=True))
    ok = publish(client, clip, headers={**HTMX, "X-CSRFToken": token})  # as htmx sends it
    assert ok.status_code == 200 and 'id="publish-success"' in ok.get_data(as_text=True)
    assert len(logs(db)) == 1


# The panel says what it will do and what it did (issue 12, item 7) -----------------------------

def test_a_tag_with_a_space_is_refused_and_the_example_follows_the_rule(client, db, login, make_clip):
    login("editor")
    clip = make_clip()
    page = client.get(f"/clips/{clip.id}").get_data(as_text=True)
    hashtags = re.search(r'<input[^>]*id="hashtags"[^>]*>', page).group(0)
    assert 'placeholder="launch, springsale"' in hashtags
    assert "Separated by commas" in page and "springsale, not spring sale" in page

    html = assert_refused(publish(client, clip, hashtags="launch, spring sale"), db)
    assert field_error(html, "hashtags") == (
        "\u201cspring sale\u201d is not one hashtag: a tag is one word (write springsale), "
        "and tags are separated by commas")

    publish(client, clip, hashtags="launch, springsale, #spring #sale")
    [log] = logs(db)
    assert log.hashtags == ["launch", "springsale", "spring", "sale"]


def test_the_result_names_the_account_and_platform(client, db, login, make_clip, make_account):
    login("editor")
    clip_id = make_clip().id
    account_id = make_account("tiktok", "acme.clips").id
    html = publish(client, type("C", (), {"id": clip_id}), platform="tiktok",
                   social_account_id=str(account_id)).get_data(as_text=True)
    target = re.search(r'<span id="publish-target">(.*?)</span>', html, re.S).group(1)
    assert target == '<strong class="target-account">@acme.clips</strong> on TikTok'
    html = publish(client, type("C", (), {"id": clip_id}), platform="youtube").get_data(as_text=True)
    target = re.search(r'<span id="publish-target">(.*?)</span>\.', html, re.S).group(1)
    assert target == 'YouTube <span class="muted">(simulator, no account)</span>'


@ALWAYS_FAIL
def test_a_failure_names_the_account_too(client, db, login, make_clip, make_account):
    login("editor")
    clip_id = make_clip().id
    account_id = make_account("instagram", "acme").id
    html = publish(client, type("C", (), {"id": clip_id}), social_account_id=str(account_id)).get_data(as_text=True)
    assert ('<span class="badge badge-failed">Failed</span> <span id="publish-target"><strong class="target-account">'
            '@acme</strong> on Instagram</span>: Instagram answered:') in html


def test_the_result_region_takes_focus_after_a_publish_without_javascript(client, login, make_clip):
    login("editor")
    clip = make_clip()
    page = client.get(f"/clips/{clip.id}").get_data(as_text=True)
    assert re.search(r'<div id="publish-result"[^>]*tabindex="-1">', page)  # focusable, not focused yet
    html = publish(client, clip, headers={}).get_data(as_text=True)
    assert re.search(r'<div id="publish-result" class="publish-result" aria-live="polite" tabindex="-1" '
                     r'autofocus>', html)


def test_the_caption_counts_per_platform_against_each_limit(client, db, login, make_clip, app):
    login("editor")
    clip = make_clip()
    limits = app.config["PLATFORM_LIMITS"]
    page = client.get(f"/clips/{clip.id}").get_data(as_text=True)
    counts = re.search(r'<p id="caption-counts".*?</p>', page, re.S).group(0)
    limit = limits["instagram"]["caption_max_chars"]
    assert f'id="count-instagram" data-platform="instagram" data-unit="characters" data-limit="{limit}"' in counts
    assert 'data-unit="UTF-16 units"' in counts and 'data-unit="bytes"' in counts
    assert '<span class="count-used">0</span>' in counts

    # A refused form comes back with the counts of what was typed: caption, blank line, tags.
    caption = "é" * 2200
    html = assert_refused(publish(client, clip, caption=caption, hashtags="run, 早朝"), db)
    text = caption + "\n\n#run #早朝"
    counts = re.search(r'<p id="caption-counts".*?</p>', html, re.S).group(0)
    instagram = re.search(r'id="count-instagram".*?</span>\s*</span>', counts, re.S).group(0)
    assert f'<span class="count-used">{len(text)}</span> / 2200' in instagram
    assert f"(over by {len(text) - 2200})" in instagram
    assert '<span class="caption-count over" id="count-instagram"' in counts
    youtube = re.search(r'id="count-youtube".*?</span>\s*</span>', counts, re.S).group(0)
    assert f'<span class="count-used">{len(text.encode())}</span>' in youtube


def test_the_button_says_schedule_when_scheduling(client, login, make_clip):
    login("editor")
    page = client.get(f"/clips/{make_clip().id}").get_data(as_text=True)
    button = re.search(r'<button type="submit" id="publish-button">.*?</button>', page).group(0)
    # Which label shows follows the When radio in CSS (:has), so it holds without JavaScript.
    assert '<span class="when-now">Publish</span><span class="when-later">Schedule</span>' in button
    css = client.get("/static/app.css").get_data(as_text=True)
    assert "#publish-form:has(#when-1:checked) .when-now" in css
    assert "#publish-form:not(:has(#when-1:checked)) .when-later" in css
