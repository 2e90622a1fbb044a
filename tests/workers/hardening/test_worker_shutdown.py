"""SIGTERM stops a `flask worker` gracefully: the publishes it has in flight finish and are
recorded before it exits, within WORKER_SHUTDOWN_TIMEOUT (`make run`'s trap, Docker's stop and
systemd all send SIGTERM)."""

from __future__ import annotations

from dashboard.models import utcnow

from queue_support import event_types, get_log, iso, wait_for_status


def queue_post(api, clip):
    response = api.post("/publishing/schedule", json={
        "clip_id": str(clip.id), "platform": "tiktok", "scheduled_at": iso(utcnow())})
    assert response.status_code == 202, response.json
    return response.json["id"]


def test_sigterm_lets_the_publish_in_flight_finish_before_exiting(app, api, worker_process, make_clip):
    worker = worker_process(2, SIMULATOR_MIN_DELAY=2, SIMULATOR_MAX_DELAY=2, WORKER_SHUTDOWN_TIMEOUT=20)
    log_id = queue_post(api, make_clip())
    wait_for_status(log_id, "publishing", timeout=30)

    code = worker.terminate(timeout=30)

    row = get_log(log_id)
    assert row.status == "success", worker.output()
    assert row.external_post_id
    assert event_types(log_id)[-1] == "publish_successful"
    assert code == 0, worker.output()


def test_sigterm_waits_no_longer_than_the_shutdown_timeout(app, api, worker_process, make_clip):
    worker = worker_process(2, SIMULATOR_MIN_DELAY=30, SIMULATOR_MAX_DELAY=30, WORKER_SHUTDOWN_TIMEOUT=1)
    log_id = queue_post(api, make_clip())
    wait_for_status(log_id, "publishing", timeout=30)

    # Exits (terminate raises if it does not within 20 s) without waiting for the 30 s call:
    # cut off in its platform call, the log is left in `publishing` for the sweep.
    worker.terminate(timeout=20)
    assert get_log(log_id).status == "publishing"


def test_ctrl_c_is_graceful_too(app, api, worker_process, make_clip):
    import signal

    worker = worker_process(2, SIMULATOR_MIN_DELAY=2, SIMULATOR_MAX_DELAY=2, WORKER_SHUTDOWN_TIMEOUT=20)
    log_id = queue_post(api, make_clip())
    wait_for_status(log_id, "publishing", timeout=30)

    worker.process.send_signal(signal.SIGINT)
    worker.process.wait(30)
    assert get_log(log_id).status == "success", worker.output()
