"""A gunicorn worker SIGKILLed in the middle of an immediate publish: with no queue worker
running at all, the web processes' own sweep turns its `pending` log `unconfirmed` within
PUBLISH_TIMEOUT_SECONDS (plus one sweep interval), and a repeat of the request with the same
Idempotency-Key answers from that log instead of publishing again."""

from __future__ import annotations

import threading

import httpx

from queue_support import all_logs, event_types, wait_until


def test_a_killed_web_worker_leaves_a_log_that_becomes_unconfirmed_and_is_never_republished(
        api, gunicorn, make_clip):
    server = gunicorn(SIMULATOR_MIN_DELAY=30, SIMULATOR_MAX_DELAY=30, PUBLISH_TIMEOUT_SECONDS=2,
                      WEB_SWEEP_INTERVAL_SECONDS=1)
    clip = make_clip()
    headers = {**api.headers, "Idempotency-Key": "launch-once"}
    body = {"clip_id": str(clip.id), "platform": "tiktok", "metadata": {"caption": "Out now"}}

    def publish():
        try:
            httpx.post(server.url + "/publishing/publish", headers=headers, json=body, timeout=60)
        except httpx.HTTPError:
            pass  # the worker dies under it

    threading.Thread(target=publish, daemon=True).start()
    [log] = wait_until(lambda: [row for row in all_logs() if row.status == "pending"],
                       timeout=30, what="the publish to reach its platform call")
    server.kill_worker()

    # gunicorn starts a new worker; the repeat waits for it, and does not publish again: while
    # the log is in flight it answers with the log to follow (or, once given up, its result).
    server.wait_until_up()
    repeat = httpx.post(server.url + "/publishing/publish", headers=headers, json=body, timeout=30)
    assert repeat.headers["Idempotent-Replayed"] == "true", repeat.text
    if repeat.status_code == 202:
        assert repeat.json()["id"] == str(log.id)
        assert repeat.headers["Location"].endswith(f"/publishing/attempts/{log.id}")

    # PUBLISH_TIMEOUT_SECONDS (2) plus a sweep interval (1), with room for gunicorn's start-up.
    row = wait_until(lambda: (r := all_logs()[0]).status == "unconfirmed" and r, timeout=30,
                     what="the sweep in the web process to give the log up")
    assert row.error_message == "interrupted: the web request stopped during the platform call"
    assert "publish_interrupted" in event_types(log.id)

    replay = httpx.post(server.url + "/publishing/publish", headers=headers, json=body, timeout=30)
    assert replay.status_code == 200, replay.text
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["success"] is False and replay.json()["error_message"].startswith("Outcome unknown")
    assert len(all_logs()) == 1  # one log: nothing was published twice
