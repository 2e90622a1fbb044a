"""Cross-posting on the real queue: one log per target, per-target captions, the batch's
summary (running, then succeeded, failed or partial), and a bad target refusing the batch."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from dashboard.credentials import set_account_credentials
from dashboard.models import LedgerEvent, PublishBatch
from dashboard.publishing.outcome import PlatformOutcome
from dashboard.publishing.simulator import PlatformSimulator

from queue_support import count_logs, event_types, released, wait_until


@pytest.fixture
def family(make_account):
    """An Instagram main account with two active satellites and an inactive one."""
    main = make_account("instagram", "brand")
    satellites = [make_account("instagram", f"brand.{name}", parent_account_id=main.id)
                  for name in ("fr", "de")]
    retired = make_account("instagram", "brand.old", parent_account_id=main.id, active=False)
    return main, satellites, retired


def batch_body(clip, caption="For everyone", **fields):
    return {"clip_id": str(clip.id), "metadata": {"caption": caption, "hashtags": ["launch"]}, **fields}


def wait_for_batch(api, batch_id, *statuses, timeout=15.0):
    def done():
        body = api.get(f"/publishing/batches/{batch_id}").json
        return body if body["status"] in statuses else None
    return wait_until(done, timeout, what=f"batch {batch_id} to become {'/'.join(statuses)}")


def nothing_written() -> bool:
    def read(session):
        return (session.scalar(select(func.count()).select_from(PublishBatch)),
                session.scalar(select(func.count()).select_from(LedgerEvent)
                               .where(LedgerEvent.entity_type == "clip")))
    from dashboard.extensions import db

    return count_logs() == 0 and released(lambda: read(db.session)) == (0, 0)


def test_main_and_its_satellites_get_one_log_each_with_their_captions(app, api, start_worker,
                                                                      family, make_clip):
    main, (fr, de), retired = family
    clip = make_clip()
    response = api.post("/publishing/batches", json=batch_body(
        clip, with_satellites_of=[str(main.id)],
        targets=[{"social_account_id": str(fr.id), "metadata": {"caption": "Pour la France"}}]))

    assert response.status_code == 202, response.json
    batch = response.json
    assert batch["status"] == "running" and batch["counts"] == {"queued": 3}
    by_account = {log["social_account_id"]: log for log in batch["logs"]}
    assert set(by_account) == {str(main.id), str(fr.id), str(de.id)}  # not the inactive one
    assert by_account[str(fr.id)]["caption"] == "Pour la France"
    assert by_account[str(fr.id)]["hashtags"] == []
    assert by_account[str(main.id)]["caption"] == by_account[str(de.id)]["caption"] == "For everyone"
    assert {log["batch_id"] for log in batch["logs"]} == {batch["id"]}
    assert api.get(f"/publishing/batches/{batch['id']}").json["status"] == "running"

    start_worker(4)
    done = wait_for_batch(api, batch["id"], "succeeded", "failed", "partial")

    assert done["status"] == "succeeded"
    assert done["counts"] == {"success": 3}
    assert len({log["external_post_id"] for log in done["logs"]}) == 3
    for log in done["logs"]:
        types = event_types(log["id"])
        assert types[0] == "publish_queued" and types[-1] == "publish_successful"
        assert types.count("publish_started") == 1


def test_targets_are_published_concurrently(app, api, start_worker, family, make_clip):
    main, satellites, _ = family
    app.config.update(SIMULATOR_MIN_DELAY=2.0, SIMULATOR_MAX_DELAY=2.0)
    clip = make_clip()
    batch = api.post("/publishing/batches", json=batch_body(clip, with_satellites_of=[str(main.id)])).json
    start_worker(4)

    # Each call takes 2 s: all three targets are seen in flight at once.
    wait_for_batch(api, batch["id"], "running")
    wait_until(lambda: api.get(f"/publishing/batches/{batch['id']}").json["counts"] == {"publishing": 3},
               what="all three targets to be publishing at once")
    assert wait_for_batch(api, batch["id"], "succeeded", "partial", "failed")["status"] == "succeeded"


def test_targets_that_end_differently_make_a_partial_batch(app, db, api, worker, family, make_clip):
    main, (fr, de), _ = family
    # Every simulated call fails for good; the main account has real (stub) credentials.
    app.config.update(SIMULATOR_FAILURE_RATE=1.0, SIMULATOR_FAILURE_KINDS=("permanent",))
    released(lambda: set_account_credentials(db, main.id, {"access_token": "t0k3n",
                                                           "instagram_account_id": "1784"}))
    clip = make_clip()

    batch = api.post("/publishing/batches", json=batch_body(clip, with_satellites_of=[str(main.id)])).json
    done = wait_for_batch(api, batch["id"], "succeeded", "failed", "partial")

    assert done["status"] == "partial"
    assert done["counts"] == {"success": 1, "failed": 2}
    statuses = {log["social_account_id"]: log["status"] for log in done["logs"]}
    assert statuses == {str(main.id): "success", str(fr.id): "failed", str(de.id): "failed"}


def test_retrying_the_failed_target_completes_the_batch(app, api, worker, family, make_clip,
                                                       monkeypatch):
    main, (fr, de), _ = family
    real = PlatformSimulator.publish
    de_down = [True]

    def publish(self, job):  # @brand.de's first call fails for good, the others pass
        if job.account_handle == "brand.de" and de_down:
            de_down.pop()
            return PlatformOutcome(False, error_message="invalid_file_upload", error_kind="permanent")
        return real(self, job)

    monkeypatch.setattr(PlatformSimulator, "publish", publish)
    clip = make_clip()
    batch = api.post("/publishing/batches", json=batch_body(clip, with_satellites_of=[str(main.id)])).json
    partial = wait_for_batch(api, batch["id"], "succeeded", "failed", "partial")
    assert (partial["status"], partial["counts"]) == ("partial", {"success": 2, "failed": 1})
    [failed] = [log for log in partial["logs"] if log["status"] == "failed"]
    assert failed["social_account_id"] == str(de.id)

    retry = api.post(f"/publishing/logs/{failed['id']}/retry")
    assert retry.status_code == 202 and retry.json["batch_id"] == batch["id"]
    done = wait_for_batch(api, batch["id"], "succeeded", "failed", "partial")

    assert (done["status"], done["counts"]) == ("succeeded", {"success": 3})
    assert len(done["logs"]) == 3  # one row per target: its latest attempt
    [de_row] = [log for log in done["logs"] if log["social_account_id"] == str(de.id)]
    assert (de_row["id"], de_row["retry_of_id"]) == (retry.json["id"], failed["id"])


def test_a_batch_whose_targets_all_failed_is_failed(app, api, worker, family, make_clip):
    main, _, _ = family
    app.config.update(SIMULATOR_FAILURE_RATE=1.0, SIMULATOR_FAILURE_KINDS=("permanent",))
    clip = make_clip()

    batch = api.post("/publishing/batches", json=batch_body(clip, with_satellites_of=[str(main.id)])).json
    done = wait_for_batch(api, batch["id"], "succeeded", "failed", "partial")

    assert done["status"] == "failed"
    assert done["counts"] == {"failed": 3}
    assert all(log["error_message"] for log in done["logs"])


def test_targets_on_several_platforms(api, worker, make_account, make_clip):
    clip = make_clip()
    accounts = [make_account("instagram"), make_account("tiktok"), make_account("youtube")]

    batch = api.post("/publishing/batches", json=batch_body(
        clip, targets=[{"social_account_id": str(a.id)} for a in accounts])).json
    done = wait_for_batch(api, batch["id"], "succeeded", "failed", "partial")

    assert done["status"] == "succeeded"
    assert sorted(log["platform"] for log in done["logs"]) == ["instagram", "tiktok", "youtube"]


def test_one_invalid_target_refuses_the_whole_batch_naming_it(api, family, make_clip):
    main, (fr, de), _ = family
    clip = make_clip()
    response = api.post("/publishing/batches", json=batch_body(clip, targets=[
        {"social_account_id": str(fr.id)},
        {"social_account_id": str(de.id), "metadata": {"caption": "x" * 2300}},
    ]))

    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert [e["field"] for e in response.json["errors"]] == ["targets.1.metadata.caption"]
    assert "2200" in response.json["errors"][0]["message"]
    assert nothing_written()


def test_inactive_target_refuses_the_batch_naming_it(api, family, make_clip):
    main, _, retired = family
    clip = make_clip()
    response = api.post("/publishing/batches", json=batch_body(clip, targets=[
        {"social_account_id": str(main.id)}, {"social_account_id": str(retired.id)}]))

    assert response.status_code == 400
    assert [e["field"] for e in response.json["errors"]] == ["targets.1.social_account_id"]
    assert "inactive" in response.json["detail"]
    assert nothing_written()


def test_unknown_target_account_refuses_the_batch_naming_it(api, family, make_clip):
    main, _, _ = family
    clip = make_clip()
    response = api.post("/publishing/batches", json=batch_body(clip, targets=[
        {"social_account_id": str(main.id)}, {"social_account_id": str(uuid.uuid4())}]))

    assert response.status_code == 400
    assert [e["field"] for e in response.json["errors"]] == ["targets.1.social_account_id"]
    assert nothing_written()


def test_a_target_listed_twice_is_refused(api, family, make_clip):
    main, (fr, _), _ = family
    clip = make_clip()
    response = api.post("/publishing/batches", json=batch_body(clip, targets=[
        {"social_account_id": str(fr.id), "metadata": {"caption": "one"}},
        {"social_account_id": str(fr.id), "metadata": {"caption": "two"}}]))

    assert response.status_code == 400
    assert [e["field"] for e in response.json["errors"]] == ["targets.1.social_account_id"]
    assert nothing_written()


def test_a_bad_satellite_refuses_the_batch_naming_its_main_account(db, api, family, make_clip):
    main, (fr, de), _ = family
    from dashboard.models import SocialAccount

    def break_de():
        db.session.get(SocialAccount, de.id).needs_credentials = True
        db.session.commit()
    released(break_de)
    clip = make_clip()

    response = api.post("/publishing/batches", json=batch_body(clip, with_satellites_of=[str(main.id)]))

    assert response.status_code == 400
    assert [e["field"] for e in response.json["errors"]] == ["with_satellites_of.0.social_account_id"]
    assert "@brand.de needs new credentials" in response.json["detail"]
    assert nothing_written()


def test_satellites_of_a_satellite_is_refused(api, family, make_clip):
    _, (fr, _), _ = family
    clip = make_clip()
    response = api.post("/publishing/batches", json=batch_body(clip, with_satellites_of=[str(fr.id)]))

    assert response.status_code == 400
    assert [e["field"] for e in response.json["errors"]] == ["with_satellites_of"]
    assert nothing_written()


def test_a_batch_needs_a_target(api, make_clip):
    clip = make_clip()
    response = api.post("/publishing/batches", json=batch_body(clip))

    assert response.status_code == 400
    assert [e["field"] for e in response.json["errors"]] == ["targets"]
    assert nothing_written()


def test_unknown_batch_is_404(api):
    assert api.get(f"/publishing/batches/{uuid.uuid4()}").status_code == 404
    assert api.get("/publishing/batches/nope").status_code == 400
