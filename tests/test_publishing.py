"""The publishing engine through POST /publishing/publish and GET /publishing/logs/<clip_id>.

Each path of publish_clip is checked end to end: the HTTP answer, the publish log it leaves and
the exact ledger events it records.
"""

from __future__ import annotations

import json
import re
import threading
import uuid

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import insert, select

from dashboard.credentials import set_account_credentials
from dashboard.errors import InvalidInput, NotFound
from dashboard.models import LedgerEvent, PublishLog, SocialAccount, utcnow
from dashboard.publishing.models import PublishRequest
from dashboard.publishing.outcome import PlatformOutcome
from dashboard.publishing.providers import InstagramGraphClient
from dashboard.publishing.service import insert_log, publish_clip
from dashboard.publishing.simulator import FAILURES, PlatformSimulator, SimulatorSettings

from api_support import (
    COMPLETE_CREDENTIALS,
    PROVIDER_NAMES,
    PUBLISH_RESULT_FIELDS,
    assert_problem,
    clip_events,
    publish,
    written_rows,
)
from conftest import base_config

PLATFORMS = ["instagram", "tiktok", "youtube"]

# Shapes from shared/platforms.md; {handle} is filled in per test.
POST_ID = {
    "instagram": r"\d{17,18}",
    "tiktok": r"\d{19}",
    "youtube": r"[A-Za-z0-9_-]{11}",
}
POST_URL = {
    "instagram": r"https://www\.instagram\.com/reel/[A-Za-z0-9_-]{11}/",
    "tiktok": r"https://www\.tiktok\.com/@{handle}/video/{post_id}",
    "youtube": r"https://www\.youtube\.com/shorts/{post_id}",
}


def assert_platform_shapes(platform: str, result: dict, handle: str) -> None:
    """The post id and URL look like the platform's own."""
    post_id = result["external_post_id"]
    assert re.fullmatch(POST_ID[platform], post_id), post_id
    url = (POST_URL[platform].replace("{handle}", re.escape(handle))
           .replace("{post_id}", re.escape(post_id)))
    assert re.fullmatch(url, result["external_url"]), result["external_url"]


@pytest.fixture
def editor(api_headers):
    return api_headers("editor")


def only_log(db, clip_id) -> PublishLog:
    db.session.expire_all()
    logs = db.session.scalars(select(PublishLog).where(PublishLog.clip_id == clip_id)).all()
    assert len(logs) == 1
    return logs[0]


# Success, and the exact trail it leaves ----------------------------------------------------------

def test_publish_without_account_uses_the_simulator(client, db, editor, make_clip):
    clip = make_clip()
    clip_id = clip.id
    response = publish(client, editor, clip_id=clip_id, platform="tiktok",
                       metadata={"caption": "Friday!", "hashtags": ["#launch", "teaser"]})

    assert response.status_code == 200, response.json
    body = response.json
    assert set(body) == PUBLISH_RESULT_FIELDS
    assert body["success"] is True
    assert body["error_message"] is None
    assert body["platform"] == "tiktok"
    assert body["clip_id"] == str(clip_id)
    assert body["social_account_id"] is None
    assert_platform_shapes("tiktok", body, "simulated.creator")

    log = only_log(db, clip_id)
    assert (log.status, log.provider, log.social_account_id) == ("success", "simulator", None)
    assert (log.external_post_id, log.external_url) == (body["external_post_id"], body["external_url"])
    assert log.published_at is not None and log.published_at >= log.requested_at
    assert (log.caption, log.hashtags) == ("Friday!", ["launch", "teaser"])

    assert clip_events(db, clip_id) == [
        ("publish_started", {"platform": "tiktok", "social_account_id": None,
                             "publish_log_id": str(log.id)}),
        ("publish_provider_fallback", {"platform": "tiktok", "reason": "no_account",
                                       "publish_log_id": str(log.id)}),
        ("publish_successful", {"platform": "tiktok", "external_post_id": body["external_post_id"],
                                "external_url": body["external_url"], "publish_log_id": str(log.id)}),
    ]
    about_this_attempt = [e for e in db.session.scalars(select(LedgerEvent))
                          if e.event_metadata.get("publish_log_id") == str(log.id)]
    assert len(about_this_attempt) == 3
    assert {(e.entity_type, e.entity_id) for e in about_this_attempt} == {("clip", clip_id)}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_account_without_credentials_falls_back_to_the_simulator(client, db, editor, make_clip,
                                                                 make_account, platform):
    clip, account = make_clip(), make_account(platform, handle="acme.sports")
    clip_id, account_id = clip.id, account.id

    response = publish(client, editor, clip_id=clip_id, platform=platform, social_account_id=account_id)

    assert response.status_code == 200, response.json
    body = response.json
    assert set(body) == PUBLISH_RESULT_FIELDS
    assert (body["success"], body["social_account_id"]) == (True, str(account_id))
    assert_platform_shapes(platform, body, "acme.sports")
    log = only_log(db, clip_id)
    assert (log.provider, log.social_account_id) == ("simulator", account_id)
    assert clip_events(db, clip_id) == [
        ("publish_started", {"platform": platform, "social_account_id": str(account_id),
                             "publish_log_id": str(log.id)}),
        ("publish_provider_fallback", {"platform": platform, "reason": "no_credentials",
                                       "publish_log_id": str(log.id)}),
        ("publish_successful", {"platform": platform, "external_post_id": body["external_post_id"],
                                "external_url": body["external_url"], "publish_log_id": str(log.id)}),
    ]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_complete_credentials_choose_the_provider_client(client, db, editor, make_clip, make_account,
                                                         platform, caplog):
    clip, account = make_clip(), make_account(platform, handle="acme")
    clip_id, account_id = clip.id, account.id
    set_account_credentials(db, account_id, COMPLETE_CREDENTIALS[platform])

    response = publish(client, editor, clip_id=clip_id, platform=platform, social_account_id=account_id)

    assert response.status_code == 200, response.json
    body = response.json
    assert body["success"] is True
    assert_platform_shapes(platform, body, "acme")
    log = only_log(db, clip_id)
    assert log.provider == PROVIDER_NAMES[platform]
    assert clip_events(db, clip_id) == [
        ("publish_started", {"platform": platform, "social_account_id": str(account_id),
                             "publish_log_id": str(log.id)}),
        ("publish_provider_ready", {"platform": platform, "provider": PROVIDER_NAMES[platform],
                                    "publish_log_id": str(log.id)}),
        ("publish_successful", {"platform": platform, "external_post_id": body["external_post_id"],
                                "external_url": body["external_url"], "publish_log_id": str(log.id)}),
    ]
    shown = client.get(f"/publishing/logs/{clip_id}", headers=editor).json
    assert [entry["provider"] for entry in shown] == [PROVIDER_NAMES[platform]]
    for secret in COMPLETE_CREDENTIALS[platform].values():
        assert secret not in response.get_data(as_text=True)
        assert secret not in caplog.text


def _incomplete(db, monkeypatch, account_id, platform):
    set_account_credentials(db, account_id, {"access_token": "only-the-token"})


def _undecryptable(db, monkeypatch, account_id, platform):
    foreign_key = Fernet(Fernet.generate_key())
    account = db.session.get(SocialAccount, account_id)
    account.credentials_ciphertext = foreign_key.encrypt(
        json.dumps(COMPLETE_CREDENTIALS[platform]).encode()).decode()
    db.session.commit()


def _no_provider_client(db, monkeypatch, account_id, platform):
    from dashboard.publishing.providers import PROVIDER_CLIENTS

    set_account_credentials(db, account_id, COMPLETE_CREDENTIALS[platform])
    monkeypatch.delitem(PROVIDER_CLIENTS, platform)


@pytest.mark.parametrize(("arrange", "reason"), [
    (_incomplete, "incomplete_config"),
    (_undecryptable, "credential_error"),
    (_no_provider_client, "unsupported_platform"),
])
@pytest.mark.parametrize("platform", PLATFORMS)
def test_unusable_credentials_fall_back_to_the_simulator(client, db, editor, make_clip, make_account,
                                                         monkeypatch, arrange, reason, platform):
    clip, account = make_clip(), make_account(platform)
    clip_id, account_id = clip.id, account.id
    arrange(db, monkeypatch, account_id, platform)

    response = publish(client, editor, clip_id=clip_id, platform=platform, social_account_id=account_id)

    assert response.status_code == 200 and response.json["success"] is True
    body = response.json
    log = only_log(db, clip_id)
    assert log.provider == "simulator"
    assert clip_events(db, clip_id) == [
        ("publish_started", {"platform": platform, "social_account_id": str(account_id),
                             "publish_log_id": str(log.id)}),
        ("publish_provider_fallback", {"platform": platform, "reason": reason,
                                       "publish_log_id": str(log.id)}),
        ("publish_successful", {"platform": platform, "external_post_id": body["external_post_id"],
                                "external_url": body["external_url"], "publish_log_id": str(log.id)}),
    ]


# Platform failures ----------------------------------------------------------------------------

class TestPlatformFailure:
    """SIMULATOR_FAILURE_RATE 1.0: every simulated call fails, the request still succeeds."""

    @pytest.fixture
    def app_config(self, database_uri):
        return {**base_config(database_uri), "SIMULATOR_FAILURE_RATE": 1.0}

    @pytest.mark.parametrize("platform", PLATFORMS)
    def test_failure_is_a_200_with_the_platform_message(self, client, db, editor, make_clip,
                                                        make_account, platform):
        clip, account = make_clip(), make_account(platform)
        clip_id, account_id = clip.id, account.id

        response = publish(client, editor, clip_id=clip_id, platform=platform,
                           social_account_id=account_id)

        assert response.status_code == 200
        body = response.json
        assert set(body) == PUBLISH_RESULT_FIELDS
        assert body["success"] is False
        assert body["external_post_id"] is None and body["external_url"] is None
        assert body["error_message"] in {failure.message for failure in FAILURES[platform]}
        assert (body["platform"], body["clip_id"], body["social_account_id"]) == (
            platform, str(clip_id), str(account_id))

        log = only_log(db, clip_id)
        assert (log.status, log.error_message, log.published_at) == ("failed", body["error_message"], None)
        assert clip_events(db, clip_id) == [
            ("publish_started", {"platform": platform, "social_account_id": str(account_id),
                                 "publish_log_id": str(log.id)}),
            ("publish_provider_fallback", {"platform": platform, "reason": "no_credentials",
                                           "publish_log_id": str(log.id)}),
            ("publish_failed", {"platform": platform, "error": body["error_message"],
                                "publish_log_id": str(log.id)}),
        ]

    def test_every_attempt_fails(self, client, editor, make_clip):
        clip_id = make_clip().id
        results = [publish(client, editor, clip_id=clip_id, platform="youtube").json["success"]
                   for _ in range(10)]
        assert results == [False] * 10


def test_failure_rate_zero_never_fails(client, editor, make_clip):
    clip_id = make_clip().id
    results = [publish(client, editor, clip_id=clip_id, platform="instagram").json["success"]
               for _ in range(10)]
    assert results == [True] * 10


def test_simulator_waits_within_the_configured_delay():
    import time

    simulator = PlatformSimulator("youtube", SimulatorSettings(0.05, 0.06, 0.0, None))
    job = _job("youtube")
    started = time.perf_counter()
    outcome = simulator.publish(job)
    elapsed = time.perf_counter() - started
    assert outcome.success
    assert 0.05 <= elapsed < 0.5


def test_a_seed_replays_the_same_run(monkeypatch):
    """SIMULATOR_SEED: a benchmark or test run started afresh sees the same ids and failures."""
    from dashboard.publishing.simulator import SeededRandom

    def fresh_run():
        monkeypatch.setattr(SeededRandom, "_streams", {})  # as in a new process
        simulators = [PlatformSimulator(p, SimulatorSettings(0.0, 0.0, 0.5, 42)) for p in PLATFORMS]
        return [sim.publish(_job(sim.platform)) for sim in simulators for _ in range(5)]

    first, second = fresh_run(), fresh_run()
    assert first == second
    assert {outcome.success for outcome in first} == {True, False}  # rate 0.5 gave both
    ids = [outcome.external_post_id for outcome in first if outcome.success]
    assert len(ids) == len(set(ids))  # one stream for the run, not the same id every time


def _job(platform: str):
    from dashboard.publishing.outcome import PublishJob

    return PublishJob(platform=platform, clip_title="t", clip_description="", media="m.mp4",
                      duration_seconds=10.0, caption="", hashtags=(), account_handle=None)


# A publisher that raises ----------------------------------------------------------------------

def test_simulator_exception_is_a_failed_publish(client, db, editor, make_clip, monkeypatch):
    def explode(self, job):
        raise ConnectionResetError("upload connection reset by peer")

    monkeypatch.setattr(PlatformSimulator, "publish", explode)
    clip_id = make_clip().id

    response = publish(client, editor, clip_id=clip_id, platform="instagram")

    assert response.status_code == 200
    assert response.json["success"] is False
    assert response.json["error_message"] == "upload connection reset by peer"
    log = only_log(db, clip_id)
    assert (log.status, log.error_message) == ("failed", "upload connection reset by peer")
    assert clip_events(db, clip_id)[-1] == (
        "publish_failed", {"platform": "instagram", "error": "upload connection reset by peer",
                           "publish_log_id": str(log.id)})


def test_provider_exception_is_a_failed_publish(client, db, editor, make_clip, make_account,
                                                monkeypatch):
    def explode(self, file_path, **kw):
        raise TimeoutError("media container stayed IN_PROGRESS")

    monkeypatch.setattr(InstagramGraphClient, "upload_video_stub", explode)
    clip, account = make_clip(), make_account("instagram")
    clip_id, account_id = clip.id, account.id
    set_account_credentials(db, account_id, COMPLETE_CREDENTIALS["instagram"])

    response = publish(client, editor, clip_id=clip_id, platform="instagram", social_account_id=account_id)

    assert response.status_code == 200
    assert response.json["success"] is False
    assert response.json["error_message"] == "media container stayed IN_PROGRESS"
    log = only_log(db, clip_id)
    assert (log.status, log.provider) == ("failed", "instagram_graph")
    assert [event for event, _ in clip_events(db, clip_id)] == [
        "publish_started", "publish_provider_ready", "publish_failed"]


def test_exception_without_message_names_its_type(client, db, editor, make_clip, monkeypatch):
    def explode(self, job):
        raise RuntimeError()

    monkeypatch.setattr(PlatformSimulator, "publish", explode)
    clip_id = make_clip().id
    response = publish(client, editor, clip_id=clip_id, platform="youtube")
    assert response.json["success"] is False
    assert response.json["error_message"] == "RuntimeError"
    assert only_log(db, clip_id).status == "failed"


# No transaction across the platform call --------------------------------------------------------

def test_no_transaction_or_connection_is_held_during_the_platform_call(client, db, editor, make_clip,
                                                                        monkeypatch):
    """While the platform is called, another connection can read the pending log and write."""
    engine = db.engine
    clip_id = make_clip().id
    seen = {}

    def write_from_another_connection():
        try:
            with engine.connect() as conn:
                raw = conn.connection.driver_connection
                if engine.dialect.name == "sqlite":
                    raw.execute("PRAGMA busy_timeout=1000")  # fail fast instead of waiting 30 s
                else:
                    raw.execute("SET lock_timeout = '1s'")
                with conn.begin():
                    seen["status"] = conn.scalar(
                        select(PublishLog.status).where(PublishLog.clip_id == clip_id))
                    conn.execute(insert(LedgerEvent).values(
                        id=uuid.uuid4(), event_type="probe", entity_type="test",
                        entity_id=uuid.uuid4(), event_metadata={}, created_at=utcnow()))
            seen["wrote"] = True
        except Exception as exc:  # reported by the assertion below
            seen["error"] = repr(exc)

    def observing_publish(self, job):
        seen["in_transaction"] = db.session().in_transaction()
        seen["checked_out"] = engine.pool.checkedout()
        writer = threading.Thread(target=write_from_another_connection)
        writer.start()
        writer.join(timeout=10)
        return PlatformOutcome(True, external_post_id="17000000000000001",
                               external_url="https://www.instagram.com/reel/AAAAAAAAAAA/")

    monkeypatch.setattr(PlatformSimulator, "publish", observing_publish)

    response = publish(client, editor, clip_id=clip_id, platform="instagram")

    assert response.json["success"] is True, response.json
    assert seen.get("error") is None, seen["error"]
    assert seen == {"in_transaction": False, "checked_out": 0, "status": "pending", "wrote": True}
    assert only_log(db, clip_id).status == "success"


# Refusals: nothing is written -----------------------------------------------------------------

def test_unknown_clip_is_404(client, db, editor):
    before = written_rows(db)
    response = publish(client, editor, clip_id=uuid.uuid4(), platform="instagram")
    assert_problem(response, 404)
    assert written_rows(db) == before


def test_unknown_account_is_404(client, db, editor, make_clip):
    clip_id = make_clip().id
    before = written_rows(db)
    response = publish(client, editor, clip_id=clip_id, platform="instagram",
                       social_account_id=uuid.uuid4())
    assert_problem(response, 404)
    assert written_rows(db) == before


def test_platform_mismatch_is_400(client, db, editor, make_clip, make_account):
    clip_id, account_id = make_clip().id, make_account("youtube").id
    before = written_rows(db)
    response = publish(client, editor, clip_id=clip_id, platform="instagram",
                       social_account_id=account_id)
    assert_problem(response, 400, "social_account_id")
    assert written_rows(db) == before


def test_inactive_account_is_400(client, db, editor, make_clip, make_account):
    clip_id, account_id = make_clip().id, make_account("instagram", active=False).id
    before = written_rows(db)
    response = publish(client, editor, clip_id=clip_id, platform="instagram",
                       social_account_id=account_id)
    assert_problem(response, 400, "social_account_id")
    assert written_rows(db) == before


BAD_BODIES = [
    pytest.param({"clip_id": "not-a-uuid", "platform": "instagram"}, "clip_id", id="clip-id-not-uuid"),
    pytest.param({"platform": "instagram"}, "clip_id", id="clip-id-missing"),
    pytest.param({"clip_id": "{clip}", "platform": "myspace"}, "platform", id="unknown-platform"),
    pytest.param({"clip_id": "{clip}", "platform": "instagram", "social_account_id": "42"},
                 "social_account_id", id="account-id-not-uuid"),
    pytest.param({"clip_id": "{clip}", "platform": "instagram", "schedule": "now"}, "schedule",
                 id="unknown-field"),
    pytest.param({"clip_id": "{clip}", "platform": "instagram", "metadata": {"caption": "x", "mood": 1}},
                 "metadata.mood", id="unknown-metadata-field"),
    pytest.param({"clip_id": "{clip}", "platform": "instagram", "metadata": {"caption": "x" * 2201}},
                 "metadata.caption", id="instagram-caption-2201"),
    pytest.param({"clip_id": "{clip}", "platform": "tiktok", "metadata": {"caption": "\U0001F600" * 1101}},
                 "metadata.caption", id="tiktok-caption-utf16"),
    pytest.param({"clip_id": "{clip}", "platform": "instagram",
                  "metadata": {"hashtags": [f"tag{n}" for n in range(31)]}},
                 "metadata.hashtags", id="instagram-31-hashtags"),
    pytest.param({"clip_id": "{clip}", "platform": "instagram",
                  "metadata": {"hashtags": ["two words"]}},
                 "metadata.hashtags.0", id="hashtag-with-space"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_invalid_publish_body_is_400_naming_the_field(client, db, editor, make_clip, body, field):
    clip_id = str(make_clip().id)
    body = {key: clip_id if value == "{clip}" else value for key, value in body.items()}
    before = written_rows(db)
    response = client.post("/publishing/publish", headers=editor, json=body)
    assert_problem(response, 400, field)
    assert written_rows(db) == before


@pytest.mark.parametrize(("platform", "clip_fields", "field"), [
    ("youtube", {"title": "t" * 101}, "clip.title"),
    ("youtube", {"title": "Best <script> ever"}, "clip.title"),
    ("youtube", {"duration_seconds": 181.0}, "clip.duration_seconds"),
    ("instagram", {"duration_seconds": 2.5}, "clip.duration_seconds"),
    ("tiktok", {"duration_seconds": 601.0}, "clip.duration_seconds"),
])
def test_clip_breaking_a_platform_rule_is_400(client, db, editor, make_clip, platform, clip_fields, field):
    clip_id = make_clip(**clip_fields).id
    before = written_rows(db)
    assert_problem(publish(client, editor, clip_id=clip_id, platform=platform), 400, field)
    assert written_rows(db) == before


def test_youtube_description_rules(client, db, editor, make_clip):
    clip_id = make_clip().id
    before = written_rows(db)
    assert_problem(publish(client, editor, clip_id=clip_id, platform="youtube",
                           metadata={"caption": "a <b> c"}), 400, "metadata.caption")
    assert_problem(publish(client, editor, clip_id=clip_id, platform="youtube",
                           metadata={"caption": "\u00e9" * 2501}), 400, "metadata.caption")
    assert written_rows(db) == before


def test_oversized_body_is_413(client, db, editor, make_clip):
    clip_id = make_clip().id
    before = written_rows(db)
    response = publish(client, editor, clip_id=clip_id, platform="instagram",
                       metadata={"caption": "x" * (2 * 1024 * 1024)})
    assert_problem(response, 413)
    assert written_rows(db) == before


def test_caption_at_the_limit_is_accepted(client, editor, make_clip):
    clip_id = make_clip().id
    response = publish(client, editor, clip_id=clip_id, platform="instagram",
                       metadata={"caption": "x" * 2200})
    assert response.status_code == 200 and response.json["success"] is True


class TestConfiguredLimits:
    """Platform limits are settings, not constants."""

    @pytest.fixture
    def app_config(self, database_uri):
        config = base_config(database_uri)
        from dashboard.config import PLATFORM_LIMIT_DEFAULTS

        limits = {platform: dict(rules) for platform, rules in PLATFORM_LIMIT_DEFAULTS.items()}
        limits["instagram"]["caption_max_chars"] = 10
        return {**config, "PLATFORM_LIMITS": limits}

    def test_a_lowered_caption_limit_applies(self, client, db, editor, make_clip):
        clip_id = make_clip().id
        assert publish(client, editor, clip_id=clip_id, platform="instagram",
                       metadata={"caption": "x" * 10}).status_code == 200
        assert_problem(publish(client, editor, clip_id=clip_id, platform="instagram",
                               metadata={"caption": "x" * 11}), 400, "metadata.caption")


@pytest.mark.parametrize(("data", "content_type"), [
    ('{"clip_id": ', "application/json"),
    ("clip_id=1&platform=instagram", "application/x-www-form-urlencoded"),
    ('{"clip_id": "x"}', "text/plain"),
])
def test_unreadable_body_is_400(client, db, editor, data, content_type):
    before = written_rows(db)
    response = client.post("/publishing/publish", headers=editor, data=data, content_type=content_type)
    assert_problem(response, 400, "body")
    assert written_rows(db) == before


# The service without HTTP -----------------------------------------------------------------------

def test_publish_clip_serves_callers_without_a_request(app, db, make_clip):
    clip_id = make_clip().id
    result = publish_clip(db, PublishRequest(clip_id=clip_id, platform="youtube"))
    assert result.success is True and result.clip_id == clip_id
    with pytest.raises(NotFound):
        publish_clip(db, PublishRequest(clip_id=uuid.uuid4(), platform="youtube"))


def test_callers_objects_stay_usable_after_publishing(app, db, make_clip, make_user):
    """A page renders with its signed-in user after the publish button's call."""
    user, clip = make_user("editor"), make_clip(title="Kept")
    publish_clip(db, PublishRequest(clip_id=clip.id, platform="instagram"))
    assert (user.role, clip.title) == ("editor", "Kept")


def test_service_refuses_before_writing(app, db, make_clip, make_account):
    clip_id, account_id = make_clip().id, make_account("tiktok", active=False).id
    before = written_rows(db)
    with pytest.raises(InvalidInput) as refused:
        publish_clip(db, PublishRequest(clip_id=clip_id, platform="tiktok", social_account_id=account_id))
    assert [error.field for error in refused.value.errors] == ["social_account_id"]
    assert written_rows(db) == before


def test_a_new_log_is_inserted_once_and_held_as_that_row(app, db, make_clip):
    """insert_log writes a log with one INSERT, and the session holds it as that row, its
    defaults included: flushing inserts nothing more, and a change to it is an UPDATE."""
    from sqlalchemy import event

    clip_id = make_clip().id
    writes: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany):
        if "publish_logs" in statement and not statement.lstrip().upper().startswith("SELECT"):
            writes.append(statement.split()[0].upper())

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        log_row = PublishLog(clip_id=clip_id, platform="tiktok", status="queued", caption="Soon")
        insert_log(db.session, log_row)
        assert log_row in db.session and not db.session.new
        assert (log_row.attempts, log_row.hashtags, log_row.published_at) == (0, [], None)
        created = log_row.created_at
        assert created is not None and log_row.id is not None
        db.session.flush()
        log_row.status = "cancelled"
        db.session.commit()
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    assert writes == ["INSERT", "UPDATE"]
    db.session.expire_all()
    row = db.session.get(PublishLog, log_row.id)
    assert (row.status, row.caption, row.hashtags, row.attempts, row.created_at) == (
        "cancelled", "Soon", [], 0, created)


def test_supports_real_api_needs_every_key_non_empty():
    from dashboard.publishing.providers import PROVIDER_CLIENTS

    for platform, client_class in PROVIDER_CLIENTS.items():
        complete = COMPLETE_CREDENTIALS[platform]
        assert client_class(complete).supports_real_api()
        assert not client_class(None).supports_real_api()
        for key in complete:
            assert not client_class({**complete, key: " "}).supports_real_api()
            assert not client_class({k: v for k, v in complete.items() if k != key}).supports_real_api()
        assert "secret" not in repr(client_class(complete))


UPLOAD_ID = {
    "instagram": r"\d{17,18}",  # the media container's creation id
    "tiktok": r"v_pub_file~v2-1\.\d+",  # the publish_id
    "youtube": r"[A-Za-z0-9_-]{11}",  # videos.insert returns the video id
}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_provider_stubs_have_the_real_interface(platform):
    from dashboard.publishing.providers import PROVIDER_CLIENTS

    client = PROVIDER_CLIENTS[platform](COMPLETE_CREDENTIALS[platform])
    video_id = client.upload_video_stub("/videos/a.mp4", title="t", duration_seconds=30.0)
    post = client.publish_post_stub(video_id, caption="c", hashtags=("a",), title="t",
                                    account_handle="acme")
    assert re.fullmatch(UPLOAD_ID[platform], video_id), video_id
    assert_platform_shapes(platform, {"external_post_id": post.post_id, "external_url": post.url}, "acme")


# The logs endpoint ----------------------------------------------------------------------------

LOG_FIELDS = {"id", "clip_id", "platform", "social_account_id", "status", "external_post_id",
              "external_url", "error_message", "requested_at", "published_at", "created_at",
              "updated_at"}


def test_logs_are_most_recent_first_with_their_fields(client, db, editor, api_headers, make_clip,
                                                      make_account, monkeypatch):
    clip_id, account_id = make_clip().id, make_account("youtube").id
    other_clip_id = make_clip(title="Other").id
    publish(client, editor, clip_id=other_clip_id, platform="youtube")
    first = publish(client, editor, clip_id=clip_id, platform="youtube").json
    monkeypatch.setattr(PlatformSimulator, "publish",
                        lambda self, job: PlatformOutcome(False, error_message="quotaExceeded"))
    second = publish(client, editor, clip_id=clip_id, platform="youtube",
                     social_account_id=account_id).json

    response = client.get(f"/publishing/logs/{clip_id}", headers=api_headers("viewer"))

    assert response.status_code == 200
    logs = response.json
    assert len(logs) == 2
    assert all(LOG_FIELDS <= set(log) for log in logs)
    newest, oldest = logs
    assert newest["requested_at"] >= oldest["requested_at"]
    assert (newest["status"], newest["error_message"], newest["social_account_id"]) == (
        "failed", second["error_message"], str(account_id))
    assert (newest["external_post_id"], newest["published_at"]) == (None, None)
    assert (oldest["status"], oldest["external_post_id"], oldest["external_url"]) == (
        "success", first["external_post_id"], first["external_url"])
    assert {log["clip_id"] for log in logs} == {str(clip_id)}
    assert {log["platform"] for log in logs} == {"youtube"}
    for log in logs:
        for field in ("requested_at", "created_at", "updated_at"):
            assert log[field].endswith("Z")
    assert oldest["published_at"].endswith("Z")


def test_logs_order_follows_requested_at_not_insertion(client, db, api_headers, make_clip):
    """Attempts recorded out of order (e.g. by a worker) still list newest first."""
    from datetime import timedelta

    clip_id = make_clip().id
    now = utcnow()
    ids = []
    for minutes_ago in (5, 1, 30):
        row = PublishLog(clip_id=clip_id, platform="instagram", status="failed",
                         requested_at=now - timedelta(minutes=minutes_ago))
        db.session.add(row)
        db.session.flush()
        ids.append((minutes_ago, str(row.id)))
    db.session.commit()
    response = client.get(f"/publishing/logs/{clip_id}", headers=api_headers("viewer"))
    assert [log["id"] for log in response.json] == [i for _, i in sorted(ids)]


def test_logs_of_an_unknown_clip_is_404(client, api_headers):
    assert_problem(client.get(f"/publishing/logs/{uuid.uuid4()}", headers=api_headers("viewer")), 404)


def test_logs_with_a_non_uuid_is_400(client, api_headers):
    assert_problem(client.get("/publishing/logs/clip-1", headers=api_headers("viewer")), 400, "clip_id")


def test_no_log_is_left_pending(client, db, editor, make_clip, monkeypatch):
    calls = iter([RuntimeError("boom"), None])

    def sometimes_explode(self, job):
        exc = next(calls)
        if exc:
            raise exc
        return PlatformOutcome(True, external_post_id="abcdefghijk",
                               external_url="https://www.youtube.com/shorts/abcdefghijk")

    monkeypatch.setattr(PlatformSimulator, "publish", sometimes_explode)
    clip_id = make_clip().id
    publish(client, editor, clip_id=clip_id, platform="youtube")
    publish(client, editor, clip_id=clip_id, platform="youtube")
    db.session.expire_all()
    statuses = sorted(db.session.scalars(select(PublishLog.status)))
    assert statuses == ["failed", "success"]
