"""In the browser, at 390 and 1280 px: the credentials form merges (items 5), a refused account
says what happened and what to do (6), destructive buttons ask first, with and without
JavaScript (9), and the small ones (10): the reschedule box, one set of status labels, a target
waiting to retry, clip search on paste, the ledger in words without others' emails."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from playwright.sync_api import Page, expect
from sqlalchemy import select

from dashboard.ledger import record_event
from dashboard.models import PublishLog, SocialAccount, User, utcnow
from dashboard.publishing import background
from dashboard.users import create_token, user_for_token

from .conftest import ADMIN_EMAIL, screenshot
from .test_browser_accessibility import violations
from .test_browser_layout import overflow

pytestmark = pytest.mark.browser

WIDTHS = [390, 1280]


@pytest.fixture(params=WIDTHS, ids=lambda width: f"{width}px")
def width(request) -> int:
    return request.param


@pytest.fixture
def signed_in(open_page, width):
    """A page of `width` px signed in as the admin."""
    return open_page(width)


def fits(page: Page, javascript: bool = True) -> None:
    """The page fits the window and (where scripts run, as axe is one) passes axe-core."""
    page.wait_for_load_state("load")  # after a click, measure with the stylesheets applied
    assert overflow(page) <= 0, f"{page.url} is {overflow(page)} px wider than the window"
    if javascript:
        assert violations(page) == []


# --- 5. the credentials form -----------------------------------------------------------------

def test_credentials_merge_replace_clear_and_remove_after_asking(signed_in, live, width):
    page = signed_in
    account_id = live.add_account("instagram", "acme.sports")
    live.set_credentials(account_id, {"access_token": "IGQVJ-stored-token-1"})
    page.goto(f"/accounts/{account_id}/credentials")
    # Words, not keys; the stored key says so and offers its own Clear box.
    expect(page.locator("label[for=access_token]")).to_have_text("Access token")
    expect(page.locator("label[for=instagram_account_id]")).to_have_text("Instagram account ID")
    expect(page.locator("#access_token-help")).to_contain_text("Stored. Leave empty to keep it")
    expect(page.locator("#instagram_account_id-help")).to_contain_text("Not set.")
    expect(page.locator("#clear_access_token")).not_to_be_checked()
    expect(page.locator("#clear_instagram_account_id")).to_have_count(0)
    fits(page)

    # Only the missing key: the stored token stays, and the account is complete.
    page.fill("#instagram_account_id", "17841400000000042")
    page.click("#credentials-submit")
    expect(page.locator("#credentials-mode")).to_have_text("provider ready")
    expect(page.locator("#credential-keys-set")).to_have_text("Access token, Instagram account ID")
    if width == 1280:
        screenshot(page, "credentials-merge")

    # Clear one stored key explicitly.
    page.check("#clear_instagram_account_id")
    page.click("#credentials-submit")
    expect(page.locator("#credentials-mode")).to_have_text("incomplete")
    expect(page.locator("#credential-keys-missing")).to_have_text("Instagram account ID")

    # Remove asks first; "No, keep it" keeps them.
    page.click("#remove-credentials")
    expect(page.locator("#confirm-question")).to_have_text("Remove the credentials of @acme.sports?")
    fits(page)
    page.click("#confirm-keep")
    expect(page.locator("#credentials-mode")).to_have_text("incomplete")
    page.click("#remove-credentials")
    page.click("#confirm-yes")
    expect(page.locator("#flashes")).to_contain_text("it now publishes through the simulator")
    expect(page.locator("#credentials-mode")).to_have_text("simulator")
    assert "IGQVJ-stored-token-1" not in page.content()


# --- 6. needs new credentials ------------------------------------------------------------------

def test_a_refused_account_says_what_happened_when_and_what_to_do(signed_in, live, width):
    page = signed_in
    account_id = live.add_account("tiktok", "acme.sports.tiktok")
    with live.db() as db:
        account = db.session.get(SocialAccount, account_id)
        account.needs_credentials, account.needs_credentials_reason = True, "access_token_invalid"
        with time_machine.travel(datetime(2026, 7, 1, 16, 5, tzinfo=UTC), tick=False):
            record_event(db.session, "account_needs_credentials", "account", account_id,
                         {"error": "access_token_invalid"})
        db.session.commit()
    page.goto("/accounts/")
    note = page.locator(f"#needs-credentials-{account_id}")
    expect(note).to_be_visible()
    expect(note).to_contain_text("Publishing to @acme.sports.tiktok is stopped. The simulator, playing "
                                 "TikTok, refused its credentials on 2026-07-01 16:05 UTC: "
                                 "access_token_invalid.")
    expect(page.locator(f"#account-{account_id} .badge-needs-credentials")).to_have_text("publishing stopped")
    fits(page)
    if width == 1280:
        screenshot(page, "accounts-needs-credentials")

    note.locator("a.enter-credentials").click()
    expect(page).to_have_url(re.compile(f"/accounts/{account_id}/credentials$"))
    expect(page.locator(".needs-credentials-card")).to_contain_text("To publish again, enter new credentials below.")
    fits(page)
    page.fill("#access_token", "act.fresh-token")
    page.click("#credentials-submit")
    expect(page.locator(".needs-credentials-card")).to_have_count(0)
    page.goto("/accounts/")
    expect(page.locator(f"#needs-credentials-{account_id}")).to_have_count(0)


# --- 9. destructive actions ask ----------------------------------------------------------------

def answer_next_dialog(page: Page, accept: bool) -> list[str]:
    """Answer the next confirm() the page opens; returns where its question will be put."""
    asked: list[str] = []

    def answer(dialog):
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", answer)
    return asked


def test_revoke_and_revoke_all_ask_first(signed_in, live):
    page = signed_in
    with live.db() as db:
        admin_id = db.session.scalar(select(User.id).where(User.email == ADMIN_EMAIL))
        deploy_id = create_token(db, admin_id, "deploy").token.id
        laptop = create_token(db, admin_id, "laptop").plaintext
    page.goto("/tokens/")
    row = page.locator(f"#token-{deploy_id}")
    asked = answer_next_dialog(page, accept=False)
    row.locator(".revoke-token").click()
    expect(row.locator(".badge")).to_have_text("active")
    assert asked == ["Revoke the token “deploy”? Scripts using it will stop working."]
    answer_next_dialog(page, accept=True)
    row.locator(".revoke-token").click()
    expect(row.locator(".badge")).to_contain_text("revoked")

    page.click("#revoke-all")
    expect(page.locator("#confirm-question")).to_have_text("Revoke all your API tokens?")
    fits(page)
    page.click("#confirm-yes")
    expect(page.locator("#flashes")).to_contain_text("Revoked 1 token")
    with live.db() as db:
        assert user_for_token(db, laptop) is None


def test_deactivate_cancel_and_disconnect_ask_first(signed_in, live):
    page = signed_in
    editor_id = live.create_user("editor@example.com", "editor")
    page.goto("/users/")
    row = page.locator(f"#user-{editor_id}")
    answer_next_dialog(page, accept=False)
    row.locator(".deactivate-user").click()
    expect(row.locator(".badge")).to_have_text("active")
    answer_next_dialog(page, accept=True)
    row.locator(".deactivate-user").click()
    expect(row.locator(".badge")).to_have_text("deactivated")

    post_id, monday = scheduled_post(live)
    page.goto(f"/schedule?week={monday}")
    post = page.locator(f"#post-{post_id}")
    answer_next_dialog(page, accept=False)
    post.locator(".cancel-button").click()
    expect(post).to_have_attribute("data-status", "scheduled")
    answer_next_dialog(page, accept=True)
    post.locator(".cancel-button").click()
    expect(page.locator(f"#post-{post_id}")).to_have_attribute("data-status", "cancelled")

    account_id = live.add_account("youtube", "acme.archive")
    with live.db() as db:
        linked = db.session.get(SocialAccount, account_id)
        linked.linked_at, linked.connected_as = utcnow(), "Acme Archive"
        db.session.commit()
    page.goto("/accounts/")
    page.locator(f"#account-{account_id} .disconnect-account").click()
    expect(page.locator("#confirm-question")).to_have_text("Disconnect @acme.archive?")
    page.click("#confirm-keep")
    expect(page.locator(f"#account-{account_id} .connected-as")).to_have_text("Connected as Acme Archive")


def test_without_javascript_the_server_asks(open_page, live, width):
    page = open_page(width, java_script_enabled=False)
    post_id, monday = scheduled_post(live)
    editor_id = live.create_user("editor@example.com", "editor")
    page.goto(f"/schedule?week={monday}")
    page.locator(f"#post-{post_id} .cancel-button").click()
    expect(page.locator("#confirm-question")).to_have_text("Cancel this scheduled post?")
    expect(page.locator("#confirm-consequence")).to_contain_text("“Launch teaser” will not go out at")
    fits(page, javascript=False)
    if width == 1280:
        screenshot(page, "confirm")
    page.click("#confirm-yes")
    expect(page.locator("#flashes")).to_contain_text("Cancelled the scheduled post.")
    expect(page).to_have_url(re.compile(rf"/schedule\?week={monday}$"))

    page.goto("/users/")
    page.locator(f"#user-{editor_id} .deactivate-user").click()
    expect(page.locator("#confirm-question")).to_have_text("Deactivate editor@example.com?")
    page.click("#confirm-keep")
    expect(page.locator(f"#user-{editor_id} .badge")).to_have_text("active")


def scheduled_post(live, weekday: int = 0, hour: int = 10) -> tuple[uuid.UUID, str]:
    """A post scheduled next week (Monday + `weekday`, `hour` UTC); its id and that Monday."""
    today = utcnow().date()
    monday = today + timedelta(days=7 - today.weekday())
    when = datetime.combine(monday + timedelta(days=weekday), datetime.min.time(), tzinfo=UTC)
    when += timedelta(hours=hour)
    clip_id = live.add_clip()
    with live.db() as db:
        log = background.schedule_publish(db, clip_id, background.Target("instagram", None, "Later", []), when)
        return log.id, monday.isoformat()


# --- 10. the small ones -------------------------------------------------------------------------

# The width a datetime-local input needs for its value as Chromium shows it in en-US
# ("12/07/2026, 10:00 AM"), in its own font, with its padding and the picker icon; the spare
# pixels (negative when the time is cut off). Chromium draws the text in a closed shadow tree,
# so the input's scrollWidth does not tell.
ROOM_FOR_THE_TIME = """input => {
  const [day, time] = input.value.split("T");
  const [y, m, d] = day.split("-");
  const [h, min] = time.split(":");
  const hour = String((Number(h) % 12) || 12).padStart(2, "0");
  const text = `${m}/${d}/${y}, ${hour}:${min} ${Number(h) < 12 ? "AM" : "PM"}`;
  const style = getComputedStyle(input);
  const context = document.createElement("canvas").getContext("2d");
  context.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
  const needed = context.measureText(text).width + parseFloat(style.paddingLeft)
    + parseFloat(style.paddingRight) + 24;
  return input.clientWidth - needed;
}"""


def test_the_reschedule_box_shows_the_whole_time(signed_in, live, width):
    page = signed_in
    posts = [scheduled_post(live, weekday) for weekday in (0, 3, 6)]
    monday = posts[0][1]
    page.goto(f"/schedule?week={monday}")
    for post_id, _ in posts:
        post = page.locator(f"#post-{post_id}")
        post.locator(".reschedule summary").click()
        box = post.locator("input[type=datetime-local]")
        expect(box).to_be_visible()
        room = box.evaluate(ROOM_FOR_THE_TIME)
        assert room >= 0, f"the reschedule box is {-room:.0f} px too narrow for its date and time"
        edge = box.bounding_box()
        assert edge["x"] >= 0 and edge["x"] + edge["width"] <= width, edge
        post.locator(".reschedule summary").click()
    assert overflow(page) <= 0
    if width == 1280:
        post = page.locator(f"#post-{posts[2][0]}")
        post.locator(".reschedule summary").click()
        screenshot(page, "schedule-reschedule")


def test_one_set_of_status_labels_and_a_target_waiting_to_retry(signed_in, live):
    page = signed_in
    clip_id = live.add_clip("Match recap")
    live.publish(clip_id)  # published
    with live.db() as db:
        db.session.add(PublishLog(clip_id=clip_id, platform="tiktok", status="queued", provider="simulator",
                                  caption="", hashtags=[], attempts=1, error_message="rate limited",
                                  next_attempt_at=datetime(2031, 1, 6, 9, 30, tzinfo=UTC)))
        db.session.commit()
    page.goto("/history")
    options = page.locator("#status option").all_inner_texts()
    badges = page.locator(".badge[class*=badge-]").all_inner_texts()
    assert "Published" in badges and "Published" in options and "Success" not in options
    waiting = page.locator("tr[data-status=queued] .badge-retrying")
    expect(waiting).to_have_text("Waiting to retry")
    expect(waiting).to_have_attribute("title", "Next attempt at 2031-01-06 09:30 UTC")
    expect(page.locator("tr[data-status=queued] .result-cell")).to_contain_text("rate limited; next attempt at")
    assert "Queued" not in page.locator("tr[data-status=queued]").inner_text()


def test_clip_search_reacts_to_paste(signed_in, live):
    page = signed_in
    live.add_clip("Spring launch")
    live.add_clip("Winter recap")
    page.goto("/clips")
    page.locator("#q").focus()
    page.keyboard.insert_text("Winter")  # what a paste does: an input event, no key pressed
    expect(page.locator("#clip-results")).to_contain_text("Winter recap")
    expect(page.locator("#clip-results")).not_to_contain_text("Spring launch")
    expect(page).to_have_url(re.compile(r"/clips\?q=Winter$"))


def test_the_ledger_in_words_with_names_and_no_emails_for_viewers(open_page, live, width):
    clip_id = live.add_clip("Spring launch")
    live.create_user("someone.else@example.com", "editor")
    live.create_user("viewer@example.com", "viewer")
    page = open_page(width, email="viewer@example.com")
    page.goto("/ledger")
    created = page.locator("tr[data-event-type=clip_created]")
    expect(created.locator(".event-type")).to_have_text("Clip created")
    expect(created.locator(".event-type")).to_have_attribute("title", "clip_created")
    expect(created.locator("a.entity")).to_have_text("Spring launch")
    expect(created.locator("a.entity")).to_have_attribute("title", f"clip {clip_id}")
    expect(page.locator("#event_type option[value=publish_retry_scheduled]")).to_have_text(
        "Publish retry scheduled")
    assert "someone.else@example.com" not in page.content()
    assert ADMIN_EMAIL not in page.content()
    expect(page.locator("tr[data-event-type=user_created] .entity").first).to_have_text(
        re.compile(r"^(A user \((Editor|Viewer|Admin)\)|You \(Viewer\))$"))
    row = page.locator("tr[data-event-type=user_created]").first
    row.locator("button[data-expand]").click()
    expect(page.locator(".event-detail pre")).to_contain_text("(shown to admins only)")
    assert "someone.else@example.com" not in page.content()
    fits(page)
    if width == 1280:
        screenshot(page, "ledger-viewer")
    admin = open_page(width)
    admin.goto("/ledger")
    expect(admin.locator("tr[data-event-type=user_created]", has_text="someone.else@example.com")
           ).to_have_count(1)
