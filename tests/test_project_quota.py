"""YouTube's daily upload quota belongs to the Google Cloud project (the app's client id): every
channel published through one app shares it, and it resets at midnight Pacific time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from dashboard.credentials import get_account_credentials, set_account_credentials
from dashboard.models import PublishLog, PublishStatus
from dashboard.publishing.project_quota import count_youtube_upload, youtube_project_quota
from dashboard.publishing.providers.youtube import project_fingerprint

from conftest import base_config

LIMIT = 3
APP_A = "1111-app-a.apps.googleusercontent.com"
APP_B = "2222-app-b.apps.googleusercontent.com"
# 2026-12-01 in Los Angeles (PST, UTC-8) runs from 08:00 UTC to 08:00 UTC the next day.
NOON_PACIFIC = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
NEXT_MIDNIGHT_PACIFIC = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def app_config(database_uri):
    return {**base_config(database_uri), "YOUTUBE_UPLOADS_PER_DAY": LIMIT}


@pytest.fixture
def youtube_account(db, make_account):
    def make(client_id: str):
        account = make_account("youtube")
        set_account_credentials(db, account.id, {"client_id": client_id, "client_secret": "s",
                                                 "access_token": "t"})
        return account

    return make


@pytest.fixture
def upload(db, make_clip):
    """upload(account, at) -> the log of an attempt counted against its project at `at`."""
    clip = make_clip()

    def attempt(account, at: datetime) -> PublishLog:
        log_row = PublishLog(clip_id=clip.id, platform="youtube", social_account_id=account.id,
                             status=PublishStatus.PUBLISHING.value, started_at=at)
        client_id = get_account_credentials(db, account.id)["client_id"]
        count_youtube_upload(log_row, client_id, at)
        db.session.add(log_row)
        db.session.commit()
        return log_row

    return attempt


def test_accounts_of_one_app_share_its_quota(db, youtube_account, upload):
    first, second, other_app = youtube_account(APP_A), youtube_account(APP_A), youtube_account(APP_B)
    upload(first, NOON_PACIFIC - timedelta(hours=3))
    upload(second, NOON_PACIFIC - timedelta(hours=2))

    quota = youtube_project_quota(db.session, APP_A, NOON_PACIFIC)
    assert (quota.limit, quota.used, quota.remaining, quota.exhausted) == (LIMIT, 2, 1, False)
    assert youtube_project_quota(db.session, APP_B, NOON_PACIFIC).used == 0

    upload(second, NOON_PACIFIC - timedelta(hours=1))
    quota = youtube_project_quota(db.session, APP_A, NOON_PACIFIC)
    assert quota.exhausted and quota.remaining == 0
    assert quota.resets_at == NEXT_MIDNIGHT_PACIFIC
    assert quota.retry_after(NOON_PACIFIC) == 12 * 3600
    # The other app's channels still publish.
    upload(other_app, NOON_PACIFIC)
    assert not youtube_project_quota(db.session, APP_B, NOON_PACIFIC).exhausted


def test_the_quota_resets_at_midnight_pacific_time_not_after_24_hours(db, youtube_account, upload):
    account = youtube_account(APP_A)
    last_minute = NEXT_MIDNIGHT_PACIFIC - timedelta(minutes=1)  # 23:59 in Los Angeles
    for _ in range(LIMIT):
        upload(account, last_minute)
    assert youtube_project_quota(db.session, APP_A, last_minute).exhausted
    after = NEXT_MIDNIGHT_PACIFIC + timedelta(seconds=1)
    quota = youtube_project_quota(db.session, APP_A, after)
    assert quota.used == 0 and quota.resets_at == NEXT_MIDNIGHT_PACIFIC + timedelta(days=1)


def test_the_pacific_day_follows_daylight_saving_time(db, youtube_account, upload):
    account = youtube_account(APP_A)
    # 2026-07-01: PDT (UTC-7), so the day starts at 07:00 UTC.
    upload(account, datetime(2026, 7, 1, 6, 59, tzinfo=UTC))
    upload(account, datetime(2026, 7, 1, 7, 1, tzinfo=UTC))
    quota = youtube_project_quota(db.session, APP_A, datetime(2026, 7, 1, 12, 0, tzinfo=UTC))
    assert quota.used == 1
    assert quota.resets_at == datetime(2026, 7, 2, 7, 0, tzinfo=UTC)


def test_the_asking_attempt_does_not_count_against_itself(db, youtube_account, upload):
    account = youtube_account(APP_A)
    log_row = upload(account, NOON_PACIFIC)
    assert youtube_project_quota(db.session, APP_A, NOON_PACIFIC, exclude_log_id=log_row.id).used == 0
    # Counting the same attempt again the same day (a retry) keeps it one use.
    count_youtube_upload(log_row, APP_A, NOON_PACIFIC + timedelta(minutes=5))
    db.session.commit()
    assert youtube_project_quota(db.session, APP_A, NOON_PACIFIC + timedelta(hours=1)).used == 1


def test_the_log_keeps_a_fingerprint_never_the_client_id(db, youtube_account, upload):
    log_row = upload(youtube_account(APP_A), NOON_PACIFIC)
    assert log_row.quota_project == project_fingerprint(APP_A) != project_fingerprint(APP_B)
    row = db.session.execute(select(PublishLog.__table__).where(PublishLog.id == log_row.id)).one()
    assert all(APP_A not in str(value) for value in row)


def test_the_count_is_an_indexed_query(db, youtube_account, upload):
    upload(youtube_account(APP_A), NOON_PACIFIC)
    connection = db.session.connection()
    where = ("WHERE quota_project = :project AND quota_counted_at >= :start "
             "AND quota_counted_at < :end")
    params = {"project": project_fingerprint(APP_A), "start": NOON_PACIFIC - timedelta(hours=12),
              "end": NEXT_MIDNIGHT_PACIFIC}
    if connection.dialect.name == "sqlite":
        plan = connection.execute(text(f"EXPLAIN QUERY PLAN SELECT count(*) FROM publish_logs "
                                       f"{where}"), params).all()
    else:  # a near-empty table is scanned by choice: ask whether the index can serve it
        connection.execute(text("SET LOCAL enable_seqscan = off"))
        plan = connection.execute(text(f"EXPLAIN SELECT count(*) FROM publish_logs {where}"),
                                  params).all()
    assert "ix_publish_logs_quota_project_counted" in " ".join(str(row) for row in plan)
    db.session.rollback()
