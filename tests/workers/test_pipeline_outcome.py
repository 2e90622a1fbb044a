"""A platform's answer is recorded once, on the attempt it answers (pipeline.finish): one
conditional UPDATE of a log still in flight; an answer that comes after its attempt was given up,
or was started again, is kept on record as a late answer and changes nothing a person or the
next attempt relies on."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dashboard.ledger import events_for
from dashboard.models import PublishLog, PublishStatus, SocialAccount, utcnow
from dashboard.publishing import pipeline, service
from dashboard.publishing.outcome import PlatformOutcome
from dashboard.publishing.service import AttemptFacts

from queue_support import event_types, log_events

POSTED = PlatformOutcome(True, external_post_id="post-1", external_url="https://example.com/p/post-1")


@pytest.fixture
def in_flight(db, make_clip):
    """A one-call attempt in flight (its first), and its facts as the attempt started."""
    now = utcnow()
    log_row = PublishLog(clip_id=make_clip().id, platform="instagram", status=PublishStatus.PENDING.value,
                         provider="simulator", requested_at=now, started_at=now, attempts=1)
    db.session.add(log_row)
    db.session.commit()
    facts = AttemptFacts.of(log_row)
    db.session.remove()
    return facts


def log(db, facts: AttemptFacts) -> PublishLog:
    db.session.remove()
    return db.session.get(PublishLog, facts.id)


def test_an_answer_is_recorded_on_its_attempt_once(db, in_flight):
    assert pipeline.finish(db, in_flight.id, POSTED, may_retry=False, facts=in_flight)
    assert pipeline.finish(db, in_flight.id, POSTED, may_retry=False, facts=in_flight)  # a repeat

    row = log(db, in_flight)
    assert (row.status, row.external_post_id, row.published_at is not None) == ("success", "post-1", True)
    assert event_types(in_flight.id) == ["publish_successful", "publish_late_answer"]


def test_an_answer_after_the_attempt_was_given_up_keeps_the_state_a_person_acts_on(db, in_flight):
    given_up = db.session.get(PublishLog, in_flight.id)
    given_up.status = PublishStatus.UNCONFIRMED.value
    given_up.error_message = "interrupted"
    db.session.commit()

    assert pipeline.finish(db, in_flight.id, POSTED, may_retry=False, facts=in_flight)

    row = log(db, in_flight)
    assert (row.status, row.error_message, row.external_post_id) == ("unconfirmed", "interrupted", None)
    late = log_events(in_flight.id)[-1]
    assert late.event_type == "publish_late_answer"
    assert late.event_metadata["external_post_id"] == "post-1"


def test_an_answer_to_an_earlier_attempt_is_not_written_on_the_next_one(db, in_flight):
    started_again = db.session.get(PublishLog, in_flight.id)
    started_again.attempts = 2
    started_again.started_at = utcnow() + timedelta(seconds=1)
    db.session.commit()

    failed = PlatformOutcome(False, error_message="boom", error_kind="permanent")
    assert pipeline.finish(db, in_flight.id, failed, may_retry=False, facts=in_flight)

    row = log(db, in_flight)
    assert (row.status, row.attempts, row.error_message) == ("pending", 2, None)
    assert event_types(in_flight.id) == ["publish_late_answer"]


def test_a_refused_token_marks_the_account_and_keeps_what_the_session_has_not_flushed(db, make_clip,
                                                                                   make_account):
    account_id = make_account("tiktok").id
    now = utcnow()
    log_row = PublishLog(clip_id=make_clip().id, platform="tiktok", social_account_id=account_id,
                         status=PublishStatus.PUBLISHING.value, provider="tiktok", requested_at=now,
                         started_at=now, attempts=1)
    db.session.add(log_row)
    db.session.commit()
    db.session.refresh(log_row)  # loaded now, so that nothing below flushes the session
    log_id = log_row.id
    account = db.session.get(SocialAccount, account_id)
    account.display_name = "Renamed in this transaction"

    refused = PlatformOutcome(False, error_message="access token expired", error_kind="permanent",
                              auth_error=True)
    service.record_outcome(db, log_row, refused, may_retry=False)
    assert (account.needs_credentials, account.needs_credentials_reason) == (True, "access token expired")
    db.session.commit()

    db.session.remove()
    stored = db.session.get(SocialAccount, account_id)
    assert (stored.display_name, stored.needs_credentials) == ("Renamed in this transaction", True)
    assert event_types(log_id) == ["publish_failed"]
    assert [e.event_type for e in events_for(db.session, "account", account_id)] == ["account_needs_credentials"]
