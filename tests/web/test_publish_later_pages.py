"""The clip page's publish panel beyond "now": schedule on the user's clock, Cancel, one publish
per form (idempotency key), the quota message with its offer, and the cross-post panel."""

from __future__ import annotations

import copy
import re
import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from dashboard.config import PLATFORM_LIMIT_DEFAULTS
from dashboard.models import IdempotencyRecord, LedgerEvent, PublishBatch, PublishLog, User, utcnow

from page_support import field_error

HTMX = {"HX-Request": "true"}
UTC = UTC


@pytest.fixture
def app_config(app_config, request):
    """The conftest settings, changed by `@pytest.mark.parametrize("app_config", [...], indirect=True)`."""
    return {**app_config, **getattr(request, "param", {})}


def with_quota(limit: int) -> dict:
    limits = copy.deepcopy(PLATFORM_LIMIT_DEFAULTS)
    limits["instagram"]["posts_per_24h"] = limit
    return {"PLATFORM_LIMITS": limits}


def logs(db) -> list[PublishLog]:
    db.session.expire_all()
    return list(db.session.scalars(select(PublishLog).order_by(PublishLog.requested_at)))


def count(db, model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def form_key(html: str, name: str = "idempotency_key") -> str:
    return re.search(rf'name="{name}" type="hidden" value="([0-9a-f]+)"', html).group(1)


def local_value(moment: datetime, zone: str) -> str:
    """What a datetime-local input sends for `moment` on `zone`'s clock."""
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")


def schedule(client, clip_id, when: str | None, headers=HTMX, **data):
    values = {"platform": "instagram", "social_account_id": "", "caption": "Later",
              "hashtags": "", "when": "later", "scheduled_at": when or "",
              "idempotency_key": uuid.uuid4().hex}
    values.update(data)
    return client.post(f"/clips/{clip_id}/publish", data=values, headers=headers)


# The panel ------------------------------------------------------------------------------------

def test_the_panel_offers_now_or_later_on_the_users_clock(client, user_in, make_clip):
    user_in("Europe/Paris")
    clip = make_clip()
    first = client.get(f"/clips/{clip.id}").get_data(as_text=True)
    assert '<input checked id="when-0" name="when" type="radio" value="now"> Publish now' in first
    assert 'id="when-1" name="when" type="radio" value="later"' in first
    assert re.search(r'<input[^>]*id="scheduled_at"[^>]*type="datetime-local"', first)
    assert "On your clock: Europe/Paris" in first
    # A fresh idempotency key per render: two tabs are two publishes.
    second = client.get(f"/clips/{clip.id}").get_data(as_text=True)
    assert form_key(first) != form_key(second)
    assert form_key(first, "xp-idempotency_key") != form_key(first)


# Scheduling -----------------------------------------------------------------------------------

@pytest.mark.parametrize("zone", ["Europe/Paris", "America/Los_Angeles", "Asia/Kolkata"])
def test_schedule_in_the_users_zone_stores_utc(client, db, user_in, make_clip, make_account, zone):
    user_in(zone)
    clip_id = make_clip().id
    account = make_account("instagram", "acme")
    account_id = account.id
    day = (utcnow().astimezone(ZoneInfo(zone)) + timedelta(days=3)).date()
    local = datetime.combine(day, time(9, 30), tzinfo=ZoneInfo(zone))

    response = schedule(client, clip_id, local.strftime("%Y-%m-%dT%H:%M"),
                        social_account_id=str(account_id), caption="Tomorrow", hashtags="#spring")
    html = response.get_data(as_text=True)

    assert response.status_code == 200 and "HX-Retarget" not in response.headers
    [log] = logs(db)
    assert log.status == "scheduled" and log.social_account_id == account_id
    assert log.scheduled_at == local.astimezone(UTC) == log.next_attempt_at
    assert (log.caption, log.hashtags) == ("Tomorrow", ["spring"])
    shown = local.strftime("%Y-%m-%d %H:%M")
    offset = f"{local:%z}"
    named = f"{local:%Z}, UTC{offset[:3]}:{offset[3:]}"  # the zone named: "IST, UTC+05:30"
    assert re.search(rf'id="scheduled-time"><time datetime="{log.scheduled_at:%Y-%m-%dT%H:%M}:00Z" '
                     rf'title="{re.escape(zone)}">{shown} <span class="tz">{re.escape(named)}</span></time>', html)
    assert "<strong class=\"target-account\">@acme</strong> on Instagram" in html
    assert f'action="/clips/{clip_id}/scheduled/{log.id}/cancel"' in html
    assert f'href="/schedule?week={day.isoformat()}"' in html
    # The clip's history (out of band) shows it waiting, and the form gets a fresh key.
    assert 'hx-swap-oob="true"' in html and f'data-log-id="{log.id}" data-status="scheduled"' in html
    assert re.search(r'<input type="hidden" id="idempotency_key" name="idempotency_key" '
                     r'value="[0-9a-f]{32}" hx-swap-oob="true">', html)
    db.session.expire_all()
    [event] = db.session.scalars(select(LedgerEvent).where(LedgerEvent.event_type == "publish_scheduled"))
    assert event.event_metadata["publish_log_id"] == str(log.id)


def test_a_past_time_is_refused_next_to_the_field(client, db, user_in, make_clip):
    user_in("Europe/Paris")
    clip = make_clip()
    an_hour_ago = local_value(utcnow() - timedelta(hours=1), "Europe/Paris")
    response = schedule(client, clip.id, an_hour_ago)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["HX-Retarget"] == "#publish-form"
    assert field_error(html, "scheduled_at") == "Is in the past."
    assert re.search(r'<input[^>]*aria-invalid="true"[^>]*id="scheduled_at"[^>]*value="' + an_hour_ago, html)
    assert '<input checked id="when-1"' in html  # still on "later", for correction
    assert logs(db) == [] and count(db, IdempotencyRecord) == 0  # the key is free again


@pytest.mark.parametrize("value, message", [
    ("2027-03-28T02:30", "2027-03-28 02:30 does not exist in Europe/Paris: the clocks skip it for "
                         "daylight saving time; the nearest valid times are 01:59 and 03:00"),
    ("2027-10-31T02:30", "2027-10-31 02:30 happens twice in Europe/Paris (the clocks go back): first "
                         "at +02:00, then at +01:00; say which: pick a time outside the hour that repeats"),
])
def test_a_time_at_a_daylight_saving_change_is_refused_next_to_the_field(client, db, user_in, make_clip,
                                                                         value, message):
    user_in("Europe/Paris")
    html = schedule(client, make_clip().id, value).get_data(as_text=True)
    assert field_error(html, "scheduled_at") == message
    assert logs(db) == []


@pytest.mark.parametrize("value, message", [
    ("", "choose the date and time to publish at"),
    ("next tuesday", "enter a date and a time, e.g. 2026-11-26 09:00"),
])
def test_later_needs_a_readable_time(client, db, user_in, make_clip, value, message):
    user_in()
    clip = make_clip()
    html = schedule(client, clip.id, value).get_data(as_text=True)
    assert field_error(html, "scheduled_at") == message
    assert logs(db) == []


def test_without_htmx_scheduling_answers_the_whole_page(client, db, user_in, make_clip):
    user_in("Asia/Tokyo")
    clip = make_clip()
    when = local_value(utcnow() + timedelta(days=1), "Asia/Tokyo")
    html = schedule(client, clip.id, when, headers={}).get_data(as_text=True)
    assert "<html" in html and 'id="publish-scheduled"' in html and "JST, UTC+09:00" in html
    assert [log.status for log in logs(db)] == ["scheduled"]


def test_cancel_from_the_panel(client, db, user_in, make_clip):
    user_in()
    clip_id = make_clip().id
    schedule(client, clip_id, local_value(utcnow() + timedelta(hours=5), "UTC"))
    [log] = logs(db)

    response = client.post(f"/clips/{clip_id}/scheduled/{log.id}/cancel", data={"confirm": "yes"}, headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'data-status="cancelled"' in html and "will not go out" in html
    assert 'id="cancel-scheduled"' not in html
    assert logs(db)[0].status == "cancelled"

    again = client.post(f"/clips/{clip_id}/scheduled/{log.id}/cancel", data={"confirm": "yes"},
                        headers=HTMX).get_data(as_text=True)
    assert "Not cancelled: this post is cancelled and can no longer be cancelled" in again
    other_clip = make_clip(title="Other").id
    assert client.post(f"/clips/{other_clip}/scheduled/{log.id}/cancel", headers=HTMX).status_code == 404


# One publish per form ---------------------------------------------------------------------------

def test_a_repeated_post_of_one_form_publishes_once(client, db, user_in, make_clip):
    user_in()
    clip_id = make_clip().id
    data = {"platform": "instagram", "social_account_id": "", "caption": "Once", "hashtags": "",
            "when": "now", "idempotency_key": "k-" + uuid.uuid4().hex}
    first = client.post(f"/clips/{clip_id}/publish", data=data, headers=HTMX).get_data(as_text=True)
    second = client.post(f"/clips/{clip_id}/publish", data=data, headers=HTMX).get_data(as_text=True)

    [log] = logs(db)
    assert log.status == "success"
    for html in (first, second):
        assert f'<a id="publish-url" href="{log.external_url}"' in html
        assert f'<code id="publish-post-id">{log.external_post_id}</code>' in html
    assert 'id="publish-replayed"' not in first
    assert "nothing was published again" in second
    assert count(db, IdempotencyRecord) == 1
    assert db.session.scalar(select(func.count()).select_from(LedgerEvent)
                             .where(LedgerEvent.event_type == "publish_started")) == 1
    # Each answer hands the form a new key, so the next click is a new publish.
    fresh = re.findall(r'id="idempotency_key" name="idempotency_key" value="([0-9a-f]+)" hx-swap-oob', first + second)
    assert len(fresh) == 2 and data["idempotency_key"] not in fresh


def test_a_repeat_after_the_first_sending_died_shows_its_result_and_publishes_nothing(client, db, user_in,
                                                                                     make_clip):
    """The first sending created its log but never stored its answer (its process was killed):
    the repeat answers from that log, however long after, instead of publishing again."""
    user_in()
    clip_id = make_clip().id
    data = {"platform": "instagram", "social_account_id": "", "caption": "Once", "hashtags": "",
            "when": "now", "idempotency_key": "k-" + uuid.uuid4().hex}
    client.post(f"/clips/{clip_id}/publish", data=data, headers=HTMX)
    record = db.session.scalar(select(IdempotencyRecord))
    record.response_status, record.response_body = None, None
    record.created_at = utcnow() - timedelta(hours=1)
    db.session.commit()

    again = client.post(f"/clips/{clip_id}/publish", data=data, headers=HTMX).get_data(as_text=True)

    [log] = logs(db)
    assert f'<code id="publish-post-id">{log.external_post_id}</code>' in again


def test_a_repeated_schedule_schedules_once(client, db, user_in, make_clip):
    user_in()
    clip_id = make_clip().id
    when = local_value(utcnow() + timedelta(hours=3), "UTC")
    key = uuid.uuid4().hex
    first = schedule(client, clip_id, when, idempotency_key=key).get_data(as_text=True)
    second = schedule(client, clip_id, when, idempotency_key=key).get_data(as_text=True)
    [log] = logs(db)
    assert f'data-log-id="{log.id}"' in first and f'data-log-id="{log.id}"' in second
    assert "nothing was published again" in second


def test_the_same_key_with_other_values_is_refused(client, db, user_in, make_clip):
    user_in()
    clip_id = make_clip().id
    key = uuid.uuid4().hex
    data = {"platform": "instagram", "caption": "One", "when": "now", "idempotency_key": key}
    client.post(f"/clips/{clip_id}/publish", data=data, headers=HTMX)
    response = client.post(f"/clips/{clip_id}/publish", data={**data, "caption": "Two"}, headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.headers["HX-Retarget"] == "#publish-form"
    assert "already sent with other values" in html
    assert len(logs(db)) == 1


def test_a_form_without_a_key_still_publishes(client, db, user_in, make_clip):
    user_in()
    clip_id = make_clip().id
    for _ in range(2):
        client.post(f"/clips/{clip_id}/publish", data={"platform": "instagram"}, headers=HTMX)
    assert len(logs(db)) == 2 and count(db, IdempotencyRecord) == 0


@pytest.mark.parametrize("app_config", [{"SIMULATOR_FAILURE_RATE": 1.0}], indirect=True)
def test_a_double_click_on_retry_queues_one_retry_linked_to_the_failure(client, db, user_in, make_clip):
    user_in()
    clip_id = make_clip().id
    key = uuid.uuid4().hex
    client.post(f"/clips/{clip_id}/publish", data={"platform": "instagram", "idempotency_key": key},
                headers=HTMX)
    [failed] = logs(db)
    failed_id = failed.id
    retry_url = f"/clips/{clip_id}/attempts/{failed_id}/retry"
    # The same form sent again replays its result, whose Retry still names that attempt.
    replay = client.post(f"/clips/{clip_id}/publish", data={"platform": "instagram", "idempotency_key": key},
                         headers=HTMX).get_data(as_text=True)
    assert 'id="publish-replayed"' in replay and f'hx-post="{retry_url}"' in replay

    first = client.post(retry_url, headers=HTMX)
    second = client.post(retry_url, headers=HTMX)  # a double click on Retry

    assert first.status_code == 200 and second.status_code == 200
    assert "already retried" in second.get_data(as_text=True)
    _, retried = logs(db)
    assert retried.retry_of_id == failed_id and retried.status == "queued"
    assert len(logs(db)) == 2


# Quotas -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("app_config", [with_quota(1)], indirect=True)
def test_an_exhausted_quota_is_explained_inline_with_an_offer_to_schedule(client, db, user_in,
                                                                           make_clip, make_account):
    user_in("Europe/Paris")
    clip_id = make_clip().id
    account_id = make_account("instagram", "busy").id
    posted_at = utcnow() - timedelta(hours=2)
    db.session.add(PublishLog(clip_id=clip_id, platform="instagram", social_account_id=account_id,
                              status="success", requested_at=posted_at, published_at=posted_at))
    db.session.commit()
    data = {"platform": "instagram", "social_account_id": str(account_id), "caption": "More",
            "when": "now", "idempotency_key": uuid.uuid4().hex}

    response = client.post(f"/clips/{clip_id}/publish", data=data, headers=HTMX)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["HX-Retarget"] == "#publish-form"
    message = field_error(html, "social_account_id")
    assert "@busy has made 1 of its 1 posts in the last 24 hours" in message
    # On the user's clock, as the offer below it: never a UTC time they did not ask for.
    assert re.search(r"the next post is possible at \d{4}-\d\d-\d\d \d\d:\d\d CES?T, UTC\+0[12]:00\.$", message)
    next_slot = posted_at + timedelta(hours=24)
    slot = next_slot.replace(second=0, microsecond=0) + timedelta(minutes=1)
    offer = re.search(r'<button type="submit" name="use_next_slot" value="([^"]+)" '
                      r'id="schedule-next-slot"[^>]*>(.*?)</button>', html, re.S)
    assert offer.group(1) == local_value(slot, "Europe/Paris")
    assert re.search(r'title="Europe/Paris">.*CES?T, UTC\+0[12]:00', offer.group(2))
    assert len(logs(db)) == 1

    # The offer: the same values, scheduled for when the window frees a slot.
    client.post(f"/clips/{clip_id}/publish", data={**data, "use_next_slot": offer.group(1)}, headers=HTMX)
    scheduled = [log for log in logs(db) if log.status == "scheduled"]
    assert len(scheduled) == 1 and scheduled[0].scheduled_at == slot
    assert scheduled[0].caption == "More"


def test_an_account_that_needs_credentials_is_refused_inline(client, db, user_in, make_clip, make_account):
    user_in()
    clip_id = make_clip().id
    account_id = make_account("instagram", "expired", needs_credentials=True,
                              needs_credentials_reason="token expired").id
    html = client.post(f"/clips/{clip_id}/publish", headers=HTMX, data={
        "platform": "instagram", "social_account_id": str(account_id), "when": "now"}).get_data(as_text=True)
    assert "@expired needs new credentials (token expired)" in field_error(html, "social_account_id")
    assert logs(db) == []


# Cross-posting ----------------------------------------------------------------------------------

@pytest.fixture
def family(make_account):
    """An Instagram main account with two active satellites and an inactive one, and a TikTok account."""
    main = make_account("instagram", "brand")
    satellites = [make_account("instagram", f"brand.{name}", parent_account_id=main.id) for name in ("fr", "de")]
    make_account("instagram", "brand.old", parent_account_id=main.id, active=False)
    tiktok = make_account("tiktok", "brandtok")
    return main, satellites, tiktok


def crosspost(client, clip_id, headers=HTMX, **data):
    values = {"xp-caption": "For everyone", "xp-hashtags": "launch", "xp-idempotency_key": uuid.uuid4().hex}
    values.update(data)
    return client.post(f"/clips/{clip_id}/crosspost", data=values, headers=headers)


def test_the_crosspost_panel_lists_accounts_by_platform(client, user_in, make_clip, family):
    user_in()
    main, (fr, de), tiktok = family
    clip = make_clip()
    html = client.get(f"/clips/{clip.id}").get_data(as_text=True)
    panel = re.search(r'<form id="crosspost-form".*?</form>', html, re.S).group(0)
    instagram = re.search(r'id="xp-platform-instagram".*?</fieldset>', panel, re.S).group(0)
    order = re.findall(r'name="xp-(accounts|with_satellites_of)" value="([^"]+)"', instagram)
    assert order == [("accounts", str(main.id)), ("with_satellites_of", str(main.id)),
                     ("accounts", str(de.id)), ("accounts", str(fr.id))]
    assert "with its 2 satellites" in instagram and "brand.old" not in panel
    assert re.search(r'class="account-choice satellite-choice" id="xp-choice-' + str(fr.id), instagram)
    assert f'name="xp-accounts" value="{tiktok.id}"' in panel
    assert f'name="xp-caption_{fr.id.hex}"' in panel  # a caption of its own, under <details>


def test_crosspost_makes_one_log_per_target_and_goes_to_the_batch(client, db, user_in, make_clip, family):
    user = user_in()
    main, (fr, de), tiktok = family
    clip_id = make_clip().id
    response = crosspost(client, clip_id, **{
        "xp-with_satellites_of": str(main.id), "xp-accounts": [str(tiktok.id), str(fr.id)],
        f"xp-caption_{fr.id.hex}": "Pour la France", f"xp-hashtags_{tiktok.id.hex}": "#tok, tik"})

    assert response.status_code == 204
    [batch] = db.session.scalars(select(PublishBatch))
    assert response.headers["HX-Redirect"] == f"/batches/{batch.id}"
    assert batch.created_by_id == user.id
    by_account = {log.social_account_id: log for log in logs(db)}
    assert set(by_account) == {main.id, fr.id, de.id, tiktok.id}
    assert {log.status for log in by_account.values()} == {"queued"}
    assert {log.batch_id for log in by_account.values()} == {batch.id}
    assert (by_account[fr.id].caption, by_account[fr.id].hashtags) == ("Pour la France", ["launch"])
    assert (by_account[tiktok.id].caption, by_account[tiktok.id].hashtags) == ("For everyone", ["tok", "tik"])
    assert (by_account[de.id].caption, by_account[de.id].hashtags) == ("For everyone", ["launch"])

    page = client.get(f"/batches/{batch.id}").get_data(as_text=True)
    targets = re.findall(r'<tr id="target-([0-9a-f-]+)"', page)
    assert sorted(targets) == sorted(str(log.id) for log in by_account.values())
    for handle in ("@brand", "@brand.fr", "@brand.de", "@brandtok"):
        assert f"<td>{handle}" in page


def test_crosspost_without_htmx_redirects(client, db, user_in, make_clip, family):
    user_in()
    main, _, _ = family
    response = crosspost(client, make_clip().id, headers={}, **{"xp-with_satellites_of": str(main.id)})
    [batch] = db.session.scalars(select(PublishBatch))
    assert response.status_code == 303 and response.headers["Location"] == f"/batches/{batch.id}"


def test_a_repeated_crosspost_makes_one_batch(client, db, user_in, make_clip, family):
    user_in()
    main, _, _ = family
    clip_id = make_clip().id
    data = {"xp-with_satellites_of": str(main.id), "xp-idempotency_key": uuid.uuid4().hex}
    first = crosspost(client, clip_id, **data)
    second = crosspost(client, clip_id, **data)
    assert first.headers["HX-Redirect"] == second.headers["HX-Redirect"]
    assert count(db, PublishBatch) == 1 and len(logs(db)) == 3


def crosspost_refused(response, db) -> str:
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<form id="crosspost-form"') and "<html" not in html
    assert count(db, PublishBatch) == 0 and logs(db) == []
    assert count(db, IdempotencyRecord) == 0
    return html


def test_crosspost_needs_an_account(client, db, user_in, make_clip, family):
    user_in()
    html = crosspost_refused(crosspost(client, make_clip().id), db)
    assert field_error(html, "xp-accounts") == "pick at least one account, or a main account with its satellites"


def test_crosspost_errors_land_next_to_their_account(client, db, user_in, make_clip, family, make_account):
    user_in()
    main, (fr, de), tiktok = family
    expired = make_account("tiktok", "expired", needs_credentials=True, needs_credentials_reason="revoked")
    clip_id = make_clip().id

    # 31 default hashtags: fine on TikTok, too many on Instagram: named per account.
    tags = ", ".join(f"tag{i}" for i in range(31))
    html = crosspost_refused(crosspost(client, clip_id, **{
        "xp-accounts": [str(tiktok.id), str(de.id)], "xp-hashtags": tags}), db)
    message = field_error(html, "xp-hashtags")
    assert message.startswith("@brand.de: ") and "31 hashtags; Instagram allows at most 30" in message
    assert re.search(rf'<input type="checkbox" name="xp-accounts" value="{tiktok.id}"[^>]*checked', html)

    # A caption of its own that is too long: the error is on that account's caption.
    html = crosspost_refused(crosspost(client, clip_id, **{
        "xp-accounts": [str(fr.id)], f"xp-caption_{fr.id.hex}": "y" * 2300}), db)
    # 2309: the caption with #launch added
    assert "is 2309 characters; Instagram allows at most 2200" in field_error(html, f"xp-caption_{fr.id.hex}")
    assert re.search(r'<details class="own-caption" open>\s*<summary>Own caption'
                     r'<span class="visually-hidden"> for @brand.fr', html)

    # An account that needs new credentials: next to its checkbox.
    html = crosspost_refused(crosspost(client, clip_id, **{"xp-accounts": [str(expired.id)]}), db)
    assert re.search(rf'<small id="xp-account-{expired.id}-error" class="field-error" role="alert">'
                     r'@expired needs new credentials \(revoked\)', html)


def test_crosspost_is_for_editors(client, db, login, make_clip, family):
    login("viewer")
    clip = make_clip()
    main, _, _ = family
    assert 'id="crosspost-form"' not in client.get(f"/clips/{clip.id}").get_data(as_text=True)
    assert crosspost(client, clip.id, **{"xp-with_satellites_of": str(main.id)}).status_code == 403
    assert count(db, PublishBatch) == 0


# CSRF on every new POST -------------------------------------------------------------------------

class TestCsrf:
    """Every new form POST is refused without the token (400) and accepted with it."""

    @pytest.fixture
    def app_config(self, app_config):
        return {**app_config, "WTF_CSRF_ENABLED": True}

    @pytest.fixture
    def arranged(self, db, login, make_clip, make_account):
        from dashboard.publishing import background

        login("editor")
        clip_id = make_clip().id
        account = make_account("instagram", "acme")
        account_id = account.id
        target = background.Target("instagram", account_id, "", [])
        later = utcnow() + timedelta(days=2)
        scheduled = [background.schedule_publish(db, clip_id, target, later).id for _ in range(3)]
        batch = background.create_batch(db, clip_id, [target])
        db.session.expire_all()
        [batch_log] = batch.logs
        batch_log.status = "unconfirmed"
        unconfirmed = PublishLog(clip_id=clip_id, platform="instagram", status="unconfirmed",
                                 social_account_id=account_id)
        db.session.add(unconfirmed)
        db.session.commit()
        return {"clip": clip_id, "account": account_id, "scheduled": scheduled,
                "batch": batch.id, "batch_log": batch_log.id, "unconfirmed": unconfirmed.id,
                "later": local_value(later + timedelta(hours=1), "UTC")}

    def posts(self, a):
        return [
            (f"/clips/{a['clip']}/publish", {"platform": "instagram", "when": "now", "idempotency_key": "k1"}),
            (f"/clips/{a['clip']}/crosspost", {"xp-accounts": str(a["account"]), "xp-idempotency_key": "k2"}),
            (f"/clips/{a['clip']}/scheduled/{a['scheduled'][0]}/cancel", {"confirm": "yes"}),
            (f"/schedule/{a['scheduled'][1]}/cancel", {"confirm": "yes"}),
            (f"/schedule/{a['scheduled'][2]}/reschedule", {"scheduled_at": a["later"]}),
            (f"/batches/{a['batch']}/logs/{a['batch_log']}/mark-published", {}),
            (f"/history/{a['unconfirmed']}/mark-published", {"external_url": ""}),
            ("/profile", {"timezone": "Europe/Paris"}),
        ]

    def test_refused_without_the_token(self, client, db, arranged):
        before = (len(logs(db)), count(db, LedgerEvent))
        for url, data in self.posts(arranged):
            assert client.post(url, data=data).status_code == 400, url
            assert client.post(url, data=data, headers={**HTMX, "X-CSRFToken": "forged"}).status_code == 400, url
        assert (len(logs(db)), count(db, LedgerEvent)) == before
        assert db.session.scalar(select(User.timezone)) == "UTC"

    def test_accepted_with_the_token(self, client, db, arranged):
        page = client.get(f"/clips/{arranged['clip']}").get_data(as_text=True)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        for url, data in self.posts(arranged):
            response = client.post(url, data=data, headers={**HTMX, "X-CSRFToken": token})
            assert response.status_code in (200, 204, 302), url
            assert "expired" not in response.get_data(as_text=True), url
        db.session.expire_all()
        statuses = {log.id: log.status for log in logs(db)}
        assert statuses[arranged["scheduled"][0]] == statuses[arranged["scheduled"][1]] == "cancelled"
        assert statuses[arranged["batch_log"]] == statuses[arranged["unconfirmed"]] == "success"
        assert count(db, PublishBatch) == 2
        assert db.session.scalar(select(User.timezone)) == "Europe/Paris"


@pytest.mark.parametrize("app_config", [{"SIMULATOR_FAILURE_RATE": 1.0,
                                         "SIMULATOR_FAILURE_KINDS": ("unknown",)}], indirect=True)
def test_an_unknown_outcome_of_publish_now_is_not_called_a_failure(client, db, user_in, make_clip):
    user_in()
    clip_id = make_clip().id
    html = client.post(f"/clips/{clip_id}/publish", data={"platform": "instagram", "when": "now"},
                       headers=HTMX).get_data(as_text=True)
    [log] = logs(db)
    assert log.status == "unconfirmed"
    assert 'data-status="unconfirmed"' in html and '<span class="badge badge-unconfirmed">Unconfirmed</span>' in html
    assert "The platform may have published it; check before retrying." in html
    assert ">Retry anyway</button>" in html


# The picker's tree, scheduled cross-posts, captions on the batch page (issue 12, item 8) --------

def test_the_picker_is_one_tree_with_a_toggle_and_captions_beside_each_account(client, user_in, make_clip, family):
    user_in()
    main, (fr, de), tiktok = family
    html = client.get(f"/clips/{make_clip().id}").get_data(as_text=True)
    tree = re.search(rf'<li class="account-tree" id="xp-tree-{main.id}">.*?</ul>\s*</li>', html, re.S).group(0)
    line = re.search(r'<div class="account-line">.*?</div>', tree, re.S).group(0)
    # One checkbox for the main account, one toggle for its satellites, on the same line.
    assert re.findall(r'name="xp-(accounts|with_satellites_of)" value="([^"]+)"', line) == [
        ("accounts", str(main.id)), ("with_satellites_of", str(main.id))]
    assert f'data-toggles-satellites-of="{main.id}"' in line and "with its 2 satellites" in line
    satellites = re.search(r'<ul class="satellites" aria-label="Satellites of @brand">.*?</ul>', tree, re.S).group(0)
    for satellite in (fr, de):
        choice = re.search(rf'<div class="account-choice satellite-choice" id="xp-choice-{satellite.id}">.*?</details>',
                           satellites, re.S).group(0)
        assert f'data-satellite-of="{main.id}"' in choice and "with_satellites_of" not in choice
        # Its own caption sits right after its checkbox, inside its own block.
        assert f'name="xp-caption_{satellite.id.hex}"' in choice
    assert '<script src="/static/crosspost.js" defer></script>' in html


def test_a_crosspost_can_be_scheduled_on_the_users_clock(client, db, user_in, make_clip, family):
    user_in("America/New_York")
    main, (fr, de), tiktok = family
    clip_id = make_clip().id
    zone = ZoneInfo("America/New_York")
    local = datetime.combine((utcnow().astimezone(zone) + timedelta(days=2)).date(), time(8, 15), tzinfo=zone)
    response = crosspost(client, clip_id, **{
        "xp-with_satellites_of": str(main.id), "xp-when": "later",
        "xp-scheduled_at": local.strftime("%Y-%m-%dT%H:%M"),
        f"xp-caption_{fr.id.hex}": "Pour la France"})
    assert response.status_code == 204
    [batch] = db.session.scalars(select(PublishBatch))
    batch_logs = logs(db)
    assert {log.social_account_id for log in batch_logs} == {main.id, fr.id, de.id}
    assert {(log.status, log.scheduled_at, log.next_attempt_at) for log in batch_logs} == {
        ("scheduled", local.astimezone(UTC), local.astimezone(UTC))}
    events = db.session.scalars(select(LedgerEvent).where(LedgerEvent.event_type == "publish_scheduled")).all()
    assert len(events) == 3 and {e.event_metadata["batch_id"] for e in events} == {str(batch.id)}

    page = client.get(f"/batches/{batch.id}").get_data(as_text=True)
    assert f"scheduled for <time datetime=\"{local.astimezone(UTC):%Y-%m-%dT%H:%M}:00Z\"" in page
    assert 'hx-trigger="load delay:30s"' in page  # waiting for its time: no polling every second
    captions = dict(re.findall(r'<tr id="target-[^"]+" data-status="scheduled">\s*<td>@([\w.]+).*?'
                               r'<td class="target-caption">([^<]*)', page, re.S))
    assert captions == {"brand": "For everyone", "brand.fr": "Pour la France", "brand.de": "For everyone"}
    assert page.count('<small class="muted target-hashtags">#launch</small>') == 3


def test_a_scheduled_crosspost_needs_a_future_time(client, db, user_in, make_clip, family):
    user_in()
    main, _, _ = family
    clip_id = make_clip().id
    html = crosspost_refused(crosspost(client, clip_id, **{"xp-accounts": [str(main.id)], "xp-when": "later"}), db)
    assert field_error(html, "xp-scheduled_at") == "choose the date and time to publish at"
    past = local_value(utcnow() - timedelta(days=1), "UTC")
    html = crosspost_refused(crosspost(client, clip_id, **{"xp-accounts": [str(main.id)], "xp-when": "later",
                                                           "xp-scheduled_at": past}), db)
    assert field_error(html, "xp-scheduled_at") == "Is in the past."


def test_the_api_schedules_a_crosspost_through_the_same_builder(client, db, make_clip, family, api_headers):
    main, (fr, de), tiktok = family
    clip_id = make_clip().id
    response = client.post("/publishing/batches", headers=api_headers("editor"), json={
        "clip_id": str(clip_id), "metadata": {"caption": "Hi", "hashtags": ["launch"]},
        "targets": [{"social_account_id": str(tiktok.id), "metadata": {"caption": "Tok", "hashtags": []}}],
        "with_satellites_of": [str(main.id)], "scheduled_at": "2031-03-09T09:00:00", "timezone": "Europe/Paris"})
    assert response.status_code == 202, response.json
    by_account = {log.social_account_id: log for log in logs(db)}
    assert set(by_account) == {tiktok.id, main.id, fr.id, de.id}
    assert {log.scheduled_at for log in by_account.values()} == {datetime(2031, 3, 9, 8, 0, tzinfo=UTC)}
    assert (by_account[tiktok.id].caption, by_account[fr.id].caption) == ("Tok", "Hi")
    assert response.json["status"] == "running" and response.json["counts"] == {"scheduled": 4}


def test_cancel_from_the_panel_asks_first(client, db, user_in, make_clip):
    user_in()
    clip_id = make_clip().id
    html = schedule(client, clip_id, local_value(utcnow() + timedelta(hours=5), "UTC")).get_data(as_text=True)
    form = re.search(r'<form id="cancel-scheduled-form"[^>]*>', html).group(0)
    assert 'hx-confirm="Cancel the post scheduled on Instagram? It will not go out."' in form
    [log] = logs(db)
    page = client.post(f"/clips/{clip_id}/scheduled/{log.id}/cancel").get_data(as_text=True)
    assert '<h1 id="confirm-question">Cancel this scheduled post?</h1>' in page
    assert logs(db)[0].status == "scheduled"
