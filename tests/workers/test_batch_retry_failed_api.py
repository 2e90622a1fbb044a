"""`POST /publishing/batches/<id>/retry-failed`, the API's "Retry all failed" (issue 12): every
failed target of a cross-post retried through the one retry service (once, linked, kept in the
batch), Idempotency-Key replays, problem+json for an unknown batch and for nothing to retry, and
a real worker finishing the batch."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from dashboard.extensions import db as _db
from dashboard.models import PublishBatch, PublishLog, SocialAccount, utcnow

from queue_support import count_logs, released, wait_until


@pytest.fixture
def batch(db, make_clip, make_account):
    """batch(*statuses) -> (batch id, {handle: log id}): a cross-post whose targets (@t0, @t1, …,
    on Instagram) ended with these statuses."""

    def make(*statuses: str):
        clip = make_clip(title="Season opener")
        accounts = [make_account("instagram", f"t{index}") for index in range(len(statuses))]
        row = PublishBatch(clip_id=clip.id)
        db.session.add(row)
        db.session.flush()
        logs = {}
        for index, (status, account) in enumerate(zip(statuses, accounts)):
            log = PublishLog(clip_id=clip.id, platform="instagram", social_account_id=account.id,
                             status=status, provider="simulator", caption=f"For t{index}",
                             hashtags=["opener"], requested_at=utcnow(), attempts=1, batch_id=row.id,
                             error_message="Simulated outage" if status != "success" else None)
            db.session.add(log)
            db.session.flush()
            logs[f"t{index}"] = log.id
        db.session.commit()
        batch_id = row.id
        db.session.remove()
        return batch_id, logs

    return make


def retries_of(log_id) -> list[PublishLog]:
    return released(lambda: list(_db.session.scalars(select(PublishLog).where(PublishLog.retry_of_id == log_id))))


def url(batch_id) -> str:
    return f"/publishing/batches/{batch_id}/retry-failed"


def test_every_failed_target_is_retried_once_linked_and_in_its_batch(api, batch):
    batch_id, logs = batch("success", "failed", "failed", "unconfirmed")

    response = api.post(url(batch_id))

    assert response.status_code == 202, response.json
    body = response.json
    retried = {log["retry_of_id"]: log for log in body["retried"]}
    assert set(retried) == {str(logs["t1"]), str(logs["t2"])}  # the unconfirmed one is left to a person
    assert all(log["status"] == "queued" and log["batch_id"] == str(batch_id) for log in retried.values())
    assert retried[str(logs["t1"])]["caption"] == "For t1"
    assert body["refused"] == []
    assert body["batch"]["id"] == str(batch_id) and body["batch"]["status"] == "running"
    assert body["batch"]["counts"] == {"success": 1, "queued": 2, "unconfirmed": 1}
    assert [len(retries_of(logs[name])) for name in ("t0", "t1", "t2", "t3")] == [0, 1, 1, 0]


def test_a_second_retry_all_has_nothing_to_retry(api, batch):
    batch_id, logs = batch("failed")
    assert api.post(url(batch_id)).status_code == 202

    again = api.post(url(batch_id))

    assert again.status_code == 409 and again.mimetype == "application/problem+json"
    assert again.json["detail"] == f"nothing to retry: no target of batch {batch_id} has failed"
    assert len(retries_of(logs["t0"])) == 1


def test_a_batch_without_failures_is_409_and_writes_nothing(api, batch):
    batch_id, _ = batch("success", "unconfirmed")
    response = api.post(url(batch_id))
    assert response.status_code == 409 and "nothing to retry" in response.json["detail"]
    assert count_logs() == 2


def test_the_same_idempotency_key_replays_the_first_answer(api, batch):
    batch_id, logs = batch("failed", "failed")
    key = {"Idempotency-Key": uuid.uuid4().hex}

    first = api.post(url(batch_id), headers=key)
    second = api.post(url(batch_id), headers=key)

    assert first.status_code == second.status_code == 202
    assert second.headers["Idempotent-Replayed"] == "true" and second.json == first.json
    assert count_logs() == 4


def test_a_refused_target_is_listed_and_the_others_are_retried(db, api, batch):
    batch_id, logs = batch("failed", "failed")
    account_id = released(lambda: db.session.get(PublishLog, logs["t0"]).social_account_id)
    released(lambda: (setattr(db.session.get(SocialAccount, account_id), "active", False), db.session.commit()))

    response = api.post(url(batch_id))

    assert response.status_code == 202
    [refused] = response.json["refused"]
    assert refused["log_id"] == str(logs["t0"]) and "inactive" in refused["detail"].lower()
    assert [log["retry_of_id"] for log in response.json["retried"]] == [str(logs["t1"])]
    assert retries_of(logs["t0"]) == []


def test_when_every_failed_target_is_refused_it_is_409_naming_them(db, api, batch):
    batch_id, logs = batch("failed")
    account_id = released(lambda: db.session.get(PublishLog, logs["t0"]).social_account_id)
    released(lambda: (setattr(db.session.get(SocialAccount, account_id), "active", False), db.session.commit()))

    response = api.post(url(batch_id))

    assert response.status_code == 409 and response.mimetype == "application/problem+json"
    assert f"publish log {logs['t0']}" in response.json["detail"]
    assert count_logs() == 1


def test_an_unknown_or_malformed_batch_is_a_problem(api):
    unknown = api.post(url(uuid.uuid4()))
    assert unknown.status_code == 404 and unknown.mimetype == "application/problem+json"
    malformed = api.post(url("not-a-batch"))
    assert malformed.status_code == 400 and malformed.mimetype == "application/problem+json"


def test_viewers_may_not_retry(api, batch):
    batch_id, logs = batch("failed")
    assert api.as_role("viewer").post(url(batch_id)).status_code == 403
    assert retries_of(logs["t0"]) == []


def test_a_worker_finishes_the_retried_batch(api, batch, worker):
    batch_id, _ = batch("success", "failed")
    assert api.post(url(batch_id)).status_code == 202

    def finished():
        body = api.get(f"/publishing/batches/{batch_id}").json
        return body if body["status"] != "running" else None

    done = wait_until(finished, what="the retried batch to finish")
    assert (done["status"], done["counts"]) == ("succeeded", {"success": 2})
