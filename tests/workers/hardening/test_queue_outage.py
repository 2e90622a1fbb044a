"""After a Redis restart, posts that fell due while it was away go out as soon as it is back, not
at the next minute sweep once REQUEUE_GRACE_SECONDS overdue. A private redis-server (no
persistence, so a restart loses every message, as a crashed cache does) is killed and started
again under a real `flask worker`."""

from __future__ import annotations

import subprocess
import time
from datetime import timedelta

import pytest

from dashboard.models import utcnow
from dashboard.ops.health import workers_seen

from queue_support import get_log, iso, wait_for_status, wait_until
from server_support import free_port


class RedisServer:
    def __init__(self, tmp_path):
        self.port = free_port()
        self.dir = tmp_path
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True,
                             text=True).stdout.strip() != "PONG":
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def kill(self):
        self.process.kill()
        self.process.wait(10)


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.process.poll() is None:
        server.kill()


@pytest.fixture
def queue_url(redis_server):
    return f"redis://127.0.0.1:{redis_server.port}/0"


def test_posts_due_during_a_redis_outage_go_out_when_it_returns(
        app, api, make_clip, redis_server, worker_process):
    # An hour of grace: without the watch, the minute sweep would not requeue the lost post
    # before the test gives up.
    worker = worker_process(2, QUEUE_WATCH_INTERVAL_SECONDS=0.5, REQUEUE_GRACE_SECONDS=3600)
    wait_until(lambda: workers_seen(app.extensions["huey"]), timeout=30, what="the worker's heartbeat")
    due = utcnow() + timedelta(seconds=3)
    response = api.post("/publishing/schedule", json={
        "clip_id": str(make_clip().id), "platform": "tiktok", "scheduled_at": iso(due)})
    assert response.status_code == 202, response.json
    log_id = response.json["id"]

    redis_server.kill()  # its scheduled message dies with it
    while utcnow() < due + timedelta(seconds=3):
        time.sleep(0.2)
    assert get_log(log_id).status == "scheduled"
    redis_server.start()

    row = wait_for_status(log_id, "success", timeout=30)
    assert row.external_post_id, worker.output()
